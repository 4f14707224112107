"""Every public controller. A new resource adds its controller module here (one import, one list entry)."""

from kagi_gateway.controllers.auth import AuthController
from kagi_gateway.controllers.operator import OperatorController
from kagi_gateway.controllers.step_up import StepUpController

CONTROLLERS: list[type] = [
    AuthController,
    StepUpController,
    OperatorController,
]
