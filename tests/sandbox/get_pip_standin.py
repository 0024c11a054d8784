"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test bootstraps pip in each of its sanity venvs from a script it fetches from a host this
machine cannot reach; it uses a cached copy when one exists. This stand-in is installed there by
`make sanity`: it brings pip from the interpreter's own ensurepip and then installs what ansible-test
asked for (from PyPI), dropping the get-pip-only flags pip itself does not know.
"""
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"],
                          stdout=subprocess.DEVNULL)
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY_FLAGS]
    if any(not a.startswith("-") for a in args):
        subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
