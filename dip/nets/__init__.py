"""The DIP networks (skip hourglass, U-Net, ResNet, encoder-decoder), their layers and the fixed network input."""

from dip.nets.networks import (  # noqa: F401 -- the package's public names
    DOWNSAMPLE_MODES,
    NETWORKS,
    LanczosDownsample,
    ReflectConv2d,
    ResNet,
    SkipNet,
    UNet,
    build_net,
    count_parameters,
    encoder_decoder,
    make_input,
    resnet,
    size_multiple,
    skip,
    unet,
)
