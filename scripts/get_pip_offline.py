"""Stand-in for get-pip.py that ansible-test bootstraps its virtual environments with.

ansible-test downloads get-pip.py from ci-files.testing.ansible.com, which this
project's CI cannot reach; scripts/collection.sh puts this file in its cache instead.
Like get-pip.py it installs the pip it is given (``pip==24.2``), from the package index
pip is configured with, after ``ensurepip`` put the interpreter's bundled pip in place.
"""

import subprocess
import sys

# get-pip.py's own options: what to leave out of its bootstrap. ensurepip has no such
# choice and `pip install` does not know them.
GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")


def main():
    """``get_pip.py [options] pip==X`` → ensurepip, then ``pip install [options] pip==X``."""
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    main()
