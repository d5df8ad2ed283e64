"""The host_config module (plugins/modules/host_config.py): what it registers as no_log values (the file edits
themselves: module_utils/test_hostconf.py; against augtool and a real libvirt: tests/integration/test_host_config.py)."""

from ansible_collections.vmguard.hardening.plugins.modules import host_config


class Module(object):
    def __init__(self, **params):
        self.params = dict(dict(qemu_conf={}, daemon_conf={}), **params)
        self.no_log_values = set()


def test_secret_values_of_the_conf_options_become_no_log_values():
    """qemu_conf/daemon_conf are dicts (not no_log as a whole): a secret key's value is registered, so Ansible
    scrubs it from the result and from the echoed module arguments; other values and empty secrets are not."""
    m = Module(qemu_conf={"vnc_password": "S3cretVNC", "vnc_listen": "127.0.0.1", "spice_password": ""},
               daemon_conf={"tls_secret": ["a1", "b2"], "listen_tcp": 0})
    host_config.hide_secrets(m)
    assert m.no_log_values == {"S3cretVNC", "a1", "b2"}
