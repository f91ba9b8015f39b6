"""managed_localizer_node: localizer_node as a managed (lifecycle) node that a Nav2 lifecycle manager can drive.

Same parameters (declared at construction, node name `localizer_node`, config/localizer_node.yaml), topics and
services as localizer_node, which it is (`LocalizerNode` over `rclpy.lifecycle.LifecycleNode`). Transitions:
- configure: open the map and the backend, create the outputs and services. A start-up problem (no map, map/model
  mismatch) fails the transition with the reason logged; the node stays unconfigured.
- activate: subscribe the input, start the worker and the map -> odom timer.
- deactivate: stop them (the frame in progress finishes); nothing is published while inactive.
- cleanup: drop the map, the outputs and the services.
- shutdown: from any state, deactivate and clean up as needed.
Nav2's lifecycle_manager: list `localizer_node` in `node_names`; this node has no bond heartbeat (bondcpp), so set
the manager's `bond_timeout` to 0.0.
"""

from __future__ import annotations

import sys

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from dlvf_ros.ros.localizer_node import NODE_NAME, LocalizerNode
from dlvf_ros.ros.node_main import StartupError, run_node


class ManagedLocalizerNode(LocalizerNode, LifecycleNode):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__(autostart=False)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.configure_node()
        except StartupError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.activate_node()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.deactivate_node()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup_node()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        if self.map is not None:
            self.cleanup_node()
        return TransitionCallbackReturn.SUCCESS


def main(argv: list[str] | None = None) -> int:
    return run_node(ManagedLocalizerNode, NODE_NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
