"""The admin token stays out of reach of provisions and of other users:
os.getenv hides every H1MOCK_ADMIN* variable (nil, as for an unset one),
the token is removed from the process environment at start (also from
/proc/<pid>/environ), and --admin-token-file / H1MOCK_ADMIN_TOKEN_FILE
keep it off the command line that `ps` shows.

README: "Token", "The sandbox".
"""

import os
import subprocess

import pytest

from conftest import BIN, assert_exit_2, http, run_h1mock

TOKEN = "s3cret-T0ken_~+/="
ENV_VIEW = r'''
function registerRules()
  app.get("/env/<name>", function(req, name)
    local v = os.getenv(name)
    if v == nil then return "nil" end
    return "=" .. v
  end)
end
'''


def bearer(token):
    return {"Authorization": "Bearer " + token}


def env_of(srv, name):
    r = http("GET", srv.url + "/env/" + name)
    assert r.status_code == 200, r.text
    return r.text


def proc_file(pid, name):
    with open("/proc/%d/%s" % (pid, name), "rb") as f:
        return f.read()


def test_provisions_read_no_admin_variable_but_the_others(h1mock):
    env = {"H1MOCK_ADMIN_TOKEN": TOKEN, "H1MOCK_ADMIN_X": "hidden too",
           "H1MOCK_ADMIN_OPEN": "0", "H1MOCK_OTHER": "visible", "SOME_VAR": "visible too",
           "h1mock_admin_token": "lower case is another variable"}
    srv = h1mock(ENV_VIEW, env=env)
    for name in ("H1MOCK_ADMIN_TOKEN", "H1MOCK_ADMIN_X", "H1MOCK_ADMIN_OPEN", "H1MOCK_ADMIN",
                 "H1MOCK_ADMIN_TOKEN_FILE", "H1MOCK_ADMIN_PORT"):
        assert env_of(srv, name) == "nil", name
    assert env_of(srv, "H1MOCK_OTHER") == "=visible"
    assert env_of(srv, "SOME_VAR") == "=visible too"
    assert env_of(srv, "h1mock_admin_token") == "=lower case is another variable"
    assert env_of(srv, "NOT_SET_ANYWHERE_12") == "nil"
    # the token still guards the admin API
    assert http("GET", srv.admin_url + "/app/v1/provision").status_code == 401
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer(TOKEN)).status_code == 200


def test_a_posted_provision_cannot_read_the_token_either(h1mock):
    srv = h1mock(None, env={"H1MOCK_ADMIN_TOKEN": TOKEN})
    r = http("POST", srv.admin_url + "/app/v1/provision/probe", data=ENV_VIEW,
             headers=bearer(TOKEN))
    assert r.status_code == 201, r.text
    assert env_of(srv, "H1MOCK_ADMIN_TOKEN") == "nil"


def test_the_token_leaves_the_process_environment(h1mock):
    srv = h1mock(ENV_VIEW, env={"H1MOCK_ADMIN_TOKEN": TOKEN, "KEEP_ME": "kept"})
    environ = proc_file(srv.proc.pid, "environ")
    assert TOKEN.encode() not in environ
    assert b"H1MOCK_ADMIN_TOKEN=" not in environ
    assert b"KEEP_ME=kept" in environ
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer(TOKEN)).status_code == 200


def test_check_mode_hides_the_token_too(tmp_path):
    f = tmp_path / "peek.lua"
    f.write_text('assert(os.getenv("H1MOCK_ADMIN_TOKEN") == nil, "token visible")\n'
                 'assert(os.getenv("HOME_OF_TEST") == "here", "other variable hidden")\n'
                 'function registerRules() app.get("/", function() return "x" end) end\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("H1MOCK_")}
    env.update(H1MOCK_ADMIN_TOKEN=TOKEN, HOME_OF_TEST="here")
    p = subprocess.run([BIN, "--check", str(f)], capture_output=True, text=True, timeout=30,
                       env=env)
    assert p.returncode == 0, p.stderr


def token_file(tmp_path, text, mode=0o600, name="token"):
    f = tmp_path / name
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    os.chmod(f, mode)
    return f


# ids: pytest puts the test's id in the environment (PYTEST_CURRENT_TEST),
# where the token must not appear for the test to mean anything.
@pytest.mark.parametrize("text", [TOKEN, TOKEN + "\n", TOKEN + "\r\n", TOKEN + "\nignored\n"],
                         ids=["plain", "lf", "crlf", "two-lines"])
def test_token_file_guards_the_admin_api_and_stays_out_of_ps(h1mock, tmp_path, text):
    f = token_file(tmp_path, text)
    srv = h1mock(ENV_VIEW, "--admin-token-file", str(f))
    assert http("GET", srv.admin_url + "/app/v1/provision").status_code == 401
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer("ignored")).status_code == 401
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer(TOKEN)).status_code == 200
    assert TOKEN.encode() not in proc_file(srv.proc.pid, "cmdline")
    assert TOKEN.encode() not in proc_file(srv.proc.pid, "environ")
    assert env_of(srv, "H1MOCK_ADMIN_TOKEN") == "nil"
    assert " WARN " not in srv.log  # 0600: nothing to say


def test_token_file_from_the_environment_and_the_command_line_wins(h1mock, tmp_path):
    f = token_file(tmp_path, "from-file\n")
    srv = h1mock(ENV_VIEW, env={"H1MOCK_ADMIN_TOKEN_FILE": str(f)})
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer("from-file")).status_code == 200
    assert env_of(srv, "H1MOCK_ADMIN_TOKEN_FILE") == "nil"
    # the command line's token, given either way, replaces the environment's
    srv = h1mock(ENV_VIEW, "--admin-token-file", str(f), env={"H1MOCK_ADMIN_TOKEN": "from-env"})
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer("from-env")).status_code == 401
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer("from-file")).status_code == 200
    assert b"from-env" not in proc_file(srv.proc.pid, "environ")
    srv = h1mock(ENV_VIEW, "--admin-token", "from-flag", env={"H1MOCK_ADMIN_TOKEN_FILE": str(f)})
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer("from-flag")).status_code == 200


def test_a_token_file_readable_by_all_is_used_with_a_warning(h1mock, tmp_path):
    f = token_file(tmp_path, TOKEN + "\n", mode=0o644)
    srv = h1mock(None, "--admin-token-file", str(f))
    srv.wait_log(r"WARN admin token file %s can be read by every user \(mode 0644\)" % f)
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer(TOKEN)).status_code == 200
    assert TOKEN not in srv.log


@pytest.mark.parametrize("text,reason", [
    ("", "its first line is empty"),
    ("\n" + TOKEN + "\n", "its first line is empty"),
    ("two words\n", "the token must be printable ASCII without spaces"),
    (TOKEN + " \n", "the token must be printable ASCII without spaces"),
    (b"caf\xc3\xa9\n", "the token must be printable ASCII without spaces"),
    ("a" * 4097 + "\n", "the token is longer than 4096 characters"),
], ids=["empty", "blank-first-line", "space-inside", "space-after", "utf-8", "too-long"])
def test_bad_token_files_exit_2_naming_the_file(tmp_path, text, reason):
    f = token_file(tmp_path, text)
    err = assert_exit_2(run_h1mock(["--admin-token-file", str(f)], provisions=tmp_path),
                        "h1mock: admin token file '%s': %s" % (f, reason))
    assert "two words" not in err and TOKEN not in err  # a secret is not echoed


def test_missing_unreadable_or_odd_token_files_exit_2(tmp_path):
    missing = tmp_path / "missing"
    assert_exit_2(run_h1mock(["--admin-token-file", str(missing)], provisions=tmp_path),
                  "h1mock: admin token file '%s': cannot read it: No such file or directory"
                  % missing)
    assert_exit_2(run_h1mock([], {"H1MOCK_ADMIN_TOKEN_FILE": str(tmp_path)}, provisions=tmp_path),
                  "h1mock: admin token file '%s': not a regular file" % tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # refused at once, not waited on
    assert_exit_2(run_h1mock(["--admin-token-file", str(fifo)], provisions=tmp_path),
                  "h1mock: admin token file '%s': not a regular file" % fifo)
    if os.geteuid() != 0:  # root reads a 0000 file all the same
        f = token_file(tmp_path, TOKEN, mode=0)
        assert_exit_2(run_h1mock(["--admin-token-file", str(f)], provisions=tmp_path),
                      "cannot read it: Permission denied")


@pytest.mark.parametrize("args,env,message", [
    (["--admin-token", "a", "--admin-token-file", "f"], None,
     "h1mock: --admin-token and --admin-token-file are both given: give the admin token one way"),
    (["--admin-token-file=f", "--admin-token=a"], None,
     "h1mock: --admin-token and --admin-token-file are both given"),
    ([], {"H1MOCK_ADMIN_TOKEN": "a", "H1MOCK_ADMIN_TOKEN_FILE": "f"},
     "h1mock: H1MOCK_ADMIN_TOKEN and H1MOCK_ADMIN_TOKEN_FILE are both set: give the admin "
     "token one way"),
    (["--admin-token-file", ""], None, "h1mock: --admin-token-file: the value is empty"),
    (["--admin-token-file"], None, "h1mock: --admin-token-file needs a value (FILE)"),
])
def test_token_given_two_ways_exits_2(tmp_path, args, env, message):
    assert_exit_2(run_h1mock(args, env, provisions=tmp_path), message)
