"""Reward models: the method registry and losses, distributional heads, backbone loading, pretrained."""
