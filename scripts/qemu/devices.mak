# Devices the rig adds to the lean build (build-qemu.sh appends these to its device list).
CONFIG_IOMMUFD_PRI_TESTDEV=y
