"""The simulated robot: unicycle motion within its limits, on the terrain, stopping without commands; the scripted
teach drive; incremental odometry equal to the batch one; the lock-step bookkeeping; the live simulator's clock."""

import dataclasses
import threading

import numpy as np
import pytest
from sim_worlds import BARE_WORLD

from dlvf_ros.geometry import transforms
from dlvf_ros.sim import OdometryConfig, generate_world
from dlvf_ros.sim.lockstep import LockStep
from dlvf_ros.sim.odometry import WheelOdometry, simulate_odometry
from dlvf_ros.sim.trajectory import pose_on_path
from dlvf_ros.sim.vehicle import CentrelineDrive, UnicycleVehicle, VehicleConfig, VelocityCommand

SMALL = dataclasses.replace(BARE_WORLD, path_length_m=30.0)
EXACT = VehicleConfig(
    speed_scale_error_std=0.0, yaw_rate_bias_std_rad_s=0.0, speed_noise_mps=0.0, yaw_rate_noise_rad_s=0.0
)
STEP_S = 0.01
STEP_NS = 10_000_000


@pytest.fixture(scope="module")
def world():
    return generate_world(5, SMALL)


def drive(vehicle, linear, angular, seconds, start_ns=0, command_every_s=0.05):
    """Send the same command every `command_every_s` for `seconds`; returns the time (ns) at the end."""
    now = start_ns
    command = None
    for k in range(int(round(seconds / STEP_S))):
        if k % int(round(command_every_s / STEP_S)) == 0:
            command = VelocityCommand(linear, angular, now)
        vehicle.step(command, now, STEP_S)
        now += STEP_NS
    return now


def test_speed_approaches_the_command_within_the_acceleration_limit_and_is_capped(world):
    vehicle = UnicycleVehicle(world, pose_on_path(world, 2.0), EXACT, np.random.default_rng(0))
    drive(vehicle, 5.0, 0.0, 0.5)
    assert vehicle.speed_mps == pytest.approx(EXACT.max_acceleration_mps2 * 0.5)
    drive(vehicle, 5.0, 0.0, 2.0)
    assert vehicle.speed_mps == pytest.approx(EXACT.max_speed_mps)
    drive(vehicle, 0.0, 5.0, 0.2)
    assert vehicle.speed_mps == pytest.approx(EXACT.max_speed_mps - EXACT.max_deceleration_mps2 * 0.2)
    drive(vehicle, 0.0, 5.0, 2.0)
    assert vehicle.yaw_rate_rad_s == pytest.approx(EXACT.max_yaw_rate_rad_s)


def test_constant_commands_drive_a_circle_on_the_terrain(world):
    start = pose_on_path(world, 10.0)
    vehicle = UnicycleVehicle(world, start, EXACT, np.random.default_rng(0))
    yaw_rate = 2 * np.pi / 25.0  # one full turn in 25 s, on a 2 m radius at 0.5 m/s
    drive(vehicle, 0.5, yaw_rate, 1.0)  # spun up
    x0, y0, yaw0 = vehicle.x_m, vehicle.y_m, vehicle.yaw_rad
    drive(vehicle, 0.5, yaw_rate, 25.0)
    assert np.hypot(vehicle.x_m - x0, vehicle.y_m - y0) < 1e-6
    assert abs(np.angle(np.exp(1j * (vehicle.yaw_rad - yaw0)))) < 1e-6
    T = vehicle.T_world_vehicle
    assert T[2, 3] == pytest.approx(float(world.terrain_height(T[0, 3], T[1, 3])), abs=1e-9)
    assert transforms.is_rigid(T)


def test_without_fresh_commands_the_vehicle_stops_and_then_stands_still(world):
    vehicle = UnicycleVehicle(world, pose_on_path(world, 2.0), VehicleConfig(), np.random.default_rng(1))
    now = drive(vehicle, 1.0, 0.1, 2.0)
    command = VelocityCommand(1.0, 0.1, now)  # the last command, never renewed
    for _ in range(int(round((VehicleConfig().command_timeout_s + 1.5) / STEP_S))):
        vehicle.step(command, now, STEP_S)
        now += STEP_NS
    assert vehicle.speed_mps == 0.0 and vehicle.yaw_rate_rad_s == 0.0
    before = vehicle.T_world_vehicle.copy()
    for _ in range(100):
        vehicle.step(None, now, STEP_S)
        now += STEP_NS
    np.testing.assert_array_equal(vehicle.T_world_vehicle, before)


def test_actuation_errors_make_the_same_commands_drive_elsewhere(world):
    ends = []
    for seed in (1, 2):
        vehicle = UnicycleVehicle(world, pose_on_path(world, 2.0), VehicleConfig(), np.random.default_rng(seed))
        drive(vehicle, 1.0, 0.0, 5.0)
        ends.append(np.array([vehicle.x_m, vehicle.y_m]))
    exact = UnicycleVehicle(world, pose_on_path(world, 2.0), EXACT, np.random.default_rng(0))
    drive(exact, 1.0, 0.0, 5.0)
    assert 0.001 < np.linalg.norm(ends[0] - ends[1]) < 0.5
    assert 0.001 < np.linalg.norm(ends[0] - [exact.x_m, exact.y_m]) < 0.5


def test_the_teach_drive_follows_the_centreline_and_stops_at_the_end(world):
    drive_ = CentrelineDrive(world, 1.0, 0.0, 3.0)
    now = 0
    while not drive_.finished:
        drive_.step(None, now, STEP_S)
        now += STEP_NS
    assert now == pytest.approx(3.0e9, abs=STEP_NS)
    np.testing.assert_allclose(drive_.T_world_vehicle, pose_on_path(world, 3.0))
    assert drive_.velocity()[0][0] == 0.0
    with pytest.raises(ValueError, match="end > start"):
        CentrelineDrive(world, 1.0, 3.0, 3.0)


def test_incremental_odometry_equals_the_batch_odometry():
    T = np.stack([transforms.from_xyz_rpy(0.5 * k, 0.1 * np.sin(k), 0.0, 0.0, 0.0, 0.05 * k) for k in range(40)])
    stamps = np.arange(40, dtype=np.int64) * 100_000_000
    batch = simulate_odometry(T, stamps, OdometryConfig(), np.random.default_rng(3))
    odometry = WheelOdometry(OdometryConfig(), np.random.default_rng(3))
    for k in range(1, 40):
        step = odometry.step(transforms.invert(T[k - 1]) @ T[k], 0.1)
        np.testing.assert_allclose(step, batch[k])
    assert np.linalg.norm(batch[-1][:3, 3] - T[-1][:3, 3]) > 1e-4  # it drifts


def test_lockstep_waits_for_answers_and_counted_commands():
    lockstep = LockStep()
    assert not lockstep.wait_answer(5, timeout_s=0.01)
    threading.Timer(0.05, lockstep.answer, args=(7,)).start()
    assert lockstep.wait_answer(7, timeout_s=5.0)
    lockstep.answer(8)
    lockstep.answer(9)
    assert lockstep.wait_answer(8, timeout_s=0.0)
    assert not lockstep.wait_answer(8, timeout_s=0.0)  # forgotten once waited for
    assert lockstep.wait_answer(9, timeout_s=0.0)
    lockstep.command()
    assert lockstep.wait_commands(1, timeout_s=0.0) and not lockstep.wait_commands(2, timeout_s=0.01)
    threading.Timer(0.05, lockstep.stop).start()
    assert not lockstep.wait_commands(2, timeout_s=5.0)  # released by stop
