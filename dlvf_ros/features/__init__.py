"""Features: the learned U-Net, keypoint extraction, TorchScript export, and the classical baselines."""
