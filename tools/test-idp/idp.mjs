// A real OpenID Provider (panva's oidc-provider, pinned in package.json) standing in for LINE / Yahoo! JAPAN in the
// federation tests. Usage: node idp.mjs <port> '<client JSON: {"client_id","client_secret","redirect_uris"}>'.
// Its development login screen accepts any login name, which becomes the subject ("sub") of the ID token.
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const client = JSON.parse(process.argv[3]);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    ...client,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  cookies: { keys: ['kagi-test-idp-only'] },
  features: { devInteractions: { enabled: true } },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
});
provider.listen(port, '127.0.0.1', () => console.log(`test idp listening on ${issuer}`));
