# `cpack -G DEB` (run in the build directory): a Debian package of what `cmake --install`
# installs — the binary, mount.clonefs, clonefs@.service and the man pages.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME clonefs)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "dm-clone in userspace: a writable clone of a read-only disk image, over FUSE")
# Debian wraps the extended description at 80 columns (lintian:
# extended-description-line-too-long); CPack writes each line of it as given.
# CPack puts the summary before it.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "clonefs presents a writable clone of a read-only source image, block device
or NBD export as a regular file (a FUSE mount) at once, and copies the source
into a local destination in the background until the destination is a
standalone raw image. Regions become valid in its SQLite bitmap only after
their data is durable in the destination.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)  # with CPACK_SET_DESTDIR, the prefix the install runs with
# The paths written into the helper and the unit at install time need the install to run as
# DESTDIR + /usr, not into a staging prefix.
set(CPACK_SET_DESTDIR ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
# The project has no mail domain of its own yet: the default is the identity its commits carry.
set(CLONEFS_PACKAGE_MAINTAINER
    "clonefs maintainers <maintainers@users.noreply.r-seed-5203d0b5.example>"
    CACHE STRING "The Debian package's Maintainer field")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CLONEFS_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_CONTACT "${CLONEFS_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Libraries found by dpkg-shlibdeps; fuse3 for fusermount3 (mounts as a user, unmounting a dead
# mount); mount for losetup, which the recipes use.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
# http(s) sources run nbdkit's curl plugin (the nbdkit package); nothing else needs it.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "nbdkit")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "mount")
include(CPack)
