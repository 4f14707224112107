"""Every public controller. A new resource adds its controller module here (one import, one list entry)."""

from kagi_gateway.controllers.audit import AuditController
from kagi_gateway.controllers.auth import AuthController
from kagi_gateway.controllers.enrolment import EnrolmentController
from kagi_gateway.controllers.invitations import InvitationController
from kagi_gateway.controllers.lifecycle import LifecycleOperatorController, PasswordController
from kagi_gateway.controllers.locations import ContractClaimController, LocationController
from kagi_gateway.controllers.notify import CONTROLLERS as NOTIFY_CONTROLLERS
from kagi_gateway.controllers.operator import OperatorController
from kagi_gateway.controllers.permissions import (
    AccessReviewController,
    PermissionOperatorController,
    PermissionRequestController,
)
from kagi_gateway.controllers.registration import RegistrationController
from kagi_gateway.controllers.step_up import StepUpController

CONTROLLERS: list[type] = [
    AuditController,
    AuthController,
    StepUpController,
    InvitationController,
    LocationController,
    ContractClaimController,
    OperatorController,
    PermissionRequestController,
    PermissionOperatorController,
    AccessReviewController,
    PasswordController,
    RegistrationController,
    EnrolmentController,
    LifecycleOperatorController,
    *NOTIFY_CONTROLLERS,
]
