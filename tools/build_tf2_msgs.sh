#!/usr/bin/env bash
# Build the tf2_msgs interface package (TFMessage) into a virtual env that has ROS 2 from PyPI wheels.
#
# Usage: bash tools/build_tf2_msgs.sh VENV
#
# No wheel of tf2_msgs exists. This builds tools/tf2_msgs/ with the ament_cmake and rosidl wheels already in VENV
# (Debian's cmake, gcc and g++; ~15 s on 2 cores) and installs it into VENV. Idempotent and quiet: it does nothing
# when `import tf2_msgs.msg` already works (a venv built before, or a robot where apt's tf2_msgs is sourced), and it
# prints the build log only when the build fails. Its RIHS01 type hash equals real ROS 2's.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: bash $0 VENV   (the virtual env with the ros-kilted-* wheels, e.g. .venv)" >&2
    exit 2
fi
VENV="$(cd "$1" && pwd)"
PYTHON="$VENV/bin/python"
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/tf2_msgs" && pwd)"
if [[ ! -x "$PYTHON" ]]; then
    echo "build_tf2_msgs.sh: $PYTHON does not exist; create the venv first (make venv)" >&2
    exit 2
fi
if "$PYTHON" -c "import tf2_msgs.msg" 2>/dev/null; then
    exit 0
fi
for tool in cmake cc c++ make; do
    if ! command -v "$tool" >/dev/null; then
        echo "build_tf2_msgs.sh: '$tool' is missing; install it (apt-get install cmake build-essential)" >&2
        exit 1
    fi
done
if [[ ! -f "$VENV/share/rosidl_default_generators/cmake/rosidl_default_generatorsConfig.cmake" ]]; then
    echo "build_tf2_msgs.sh: $VENV has no rosidl_default_generators; install requirements/requirements.lock" >&2
    exit 1
fi

BUILD="$(mktemp -d "${TMPDIR:-/tmp}/tf2_msgs-build.XXXXXX")"
trap 'rm -rf "$BUILD"' EXIT
LOG="$BUILD/build.log"
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$VENV/bin:$PATH"

run() {
    if ! "$@" >>"$LOG" 2>&1; then
        echo "build_tf2_msgs.sh: '$*' failed; build log:" >&2
        tail -n 60 "$LOG" >&2
        exit 1
    fi
}

run cmake -S "$SOURCE" -B "$BUILD/tree" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PYTHON" -DPython3_FIND_VIRTUALENV=ONLY
run cmake --build "$BUILD/tree" --parallel 2
run cmake --install "$BUILD/tree"

if ! "$PYTHON" -c "import tf2_msgs.msg as m, geometry_msgs.msg as g; m.TFMessage(transforms=[g.TransformStamped()])" \
        >>"$LOG" 2>&1; then
    echo "build_tf2_msgs.sh: tf2_msgs was installed into $VENV but does not import:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
fi
