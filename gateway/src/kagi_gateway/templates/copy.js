// The copy button beside a key shown once. The page works without it: the key is selectable text.
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () {
    var source = document.getElementById(button.getAttribute("data-copy"));
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "コピーしました";
    });
  });
});
