"""config/gunicorn.py's logger: gunicorn's own access line is neither written nor built unless asked for."""

import logging
import runpy
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

GUNICORN_CONFIG = runpy.run_path("config/gunicorn.py")


def make_logger(**settings) -> Logger:
    config = Config()
    for name in ("logconfig_dict", "accesslog", "errorlog"):
        if name in GUNICORN_CONFIG:
            config.set(name, GUNICORN_CONFIG[name])
    for name, value in settings.items():
        config.set(name, value)
    return GUNICORN_CONFIG["logger_class"](config)


class Exploding:
    """Any attribute read fails: proves that gunicorn did not look at the request to build a line."""

    def __getattr__(self, name):
        raise AssertionError(f"gunicorn read {name!r} to build an access line nobody writes")


@pytest.fixture(autouse=True)
def restore_logging():
    # gunicorn's Logger runs dictConfig: give later tests the logging configuration they started with.
    loggers = [logging.getLogger(name) for name in (None, "gunicorn.error", "gunicorn.access")]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def test_the_service_config_uses_the_app_access_logger_and_no_gunicorn_access_log():
    assert issubclass(GUNICORN_CONFIG["logger_class"], Logger)
    assert GUNICORN_CONFIG["accesslog"] is None


def test_plain_gunicorn_logger_builds_the_line_it_then_drops():
    # The waste the subclass removes: with logconfig_dict set, gunicorn's Logger formats every request.
    config = Config()
    config.set("logconfig_dict", GUNICORN_CONFIG.get("logconfig_dict") or {"version": 1})
    with pytest.raises(AssertionError, match="to build an access line"):
        Logger(config).access(Exploding(), Exploding(), Exploding(), timedelta(milliseconds=1))


def test_without_accesslog_no_line_is_built():
    make_logger().access(Exploding(), Exploding(), Exploding(), timedelta(milliseconds=1))


def test_with_accesslog_set_gunicorn_writes_its_line(tmp_path):
    path = tmp_path / "access.log"
    logger = make_logger(accesslog=str(path), access_log_format="%(m)s %(U)s %(s)s")
    response = SimpleNamespace(status="200 OK", status_code=200, sent=12, headers=[])
    request = SimpleNamespace(headers=[])
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/v1/users/me",
        "RAW_URI": "/api/v1/users/me",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    logger.access(response, request, environ, timedelta(milliseconds=1))
    for handler in logger.access_log.handlers:
        handler.flush()
    assert path.read_text().strip() == "GET /api/v1/users/me 200"
