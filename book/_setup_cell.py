# Set-up: on Colab, install `lga` at this page's release; elsewhere this does nothing.
import importlib.util, os, subprocess, sys

REPOSITORY, RELEASE = "https://github.com/lga-book/lga-book", "v0.1.0"
ON_COLAB = "google.colab" in sys.modules or os.environ.get("LGA_FORCE_COLAB") == "1"
if ON_COLAB and importlib.util.find_spec("lga") is None:
    source = os.environ.get("LGA_INSTALL_SOURCE") or f"git+{REPOSITORY}@{RELEASE}"
    print(f"installing lga from {source} (a few minutes) ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], check=True)
    importlib.invalidate_caches()
if "google.colab" in sys.modules:
    from google.colab import output
    output.enable_custom_widget_manager()   # Colab needs this for ipywidgets 8

from lga.config import select_profile
profile = select_profile("auto")   # change to "paper" or "cpu" to force a profile
print(f"profile: {profile.name} ({profile.why})")
