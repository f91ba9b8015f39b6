"""Offline tools around the nodes: bag playing (`bag_player`), recording a node's outputs, starting ROS 2 processes
on a machine-local graph, and `dlvf replay` (a bag through the real localizer_node, recorded for `dlvf evaluate`).
Like `dlvf_ros.ros` it talks ROS 2; the nodes themselves never import it."""
