"""`python -m podium …` is the same as the `podium` command."""

from podium.cli.main import run

if __name__ == "__main__":
    run()
