"""Offline stand-in for ansible-test's pip bootstrap script (get-pip-<version>.py).

ansible-test downloads that script from a host the test machines cannot reach, to put pip into the
empty virtual environments it creates for sanity tests. This does the same with what is at hand: the
standard library's ensurepip, then pip itself installs the requested packages (e.g. pip==24.2) from
the package index pip is configured to use.
"""

import ensurepip
import os
import ssl
import subprocess
import sys

IGNORED = ("--no-setuptools", "--no-wheel")


def trust_the_system_store():
    """ansible-test runs pip with a cleaned environment: keep the machine's CA bundle for this venv."""
    candidates = [os.environ.get(name) for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")]
    candidates += ["/etc/ssl/certs/ca-certificates.crt", ssl.get_default_verify_paths().cafile]
    bundle = next((c for c in candidates if c and os.path.exists(c)), None)
    if bundle:
        with open(os.path.join(sys.prefix, "pip.conf"), "w") as f:
            f.write("[global]\ncert = %s\n" % bundle)


if __name__ == "__main__":
    ensurepip.bootstrap(upgrade=True)
    os.environ.pop("PIP_CONFIG_FILE", None)  # ensurepip points it at /dev/null for its own run
    trust_the_system_store()
    args = [a for a in sys.argv[1:] if a not in IGNORED]
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "-q"] + args))
