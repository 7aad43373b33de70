"""Classifiers: the CS231n model classes (fc_net, neural_net)."""
from fastfc.classifiers.fc_net import FullyConnectedNet, TwoLayerNet

__all__ = ["FullyConnectedNet", "TwoLayerNet"]
