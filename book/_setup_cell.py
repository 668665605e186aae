# Set-up. On Colab: install `lga` for this page, keeping Colab's own torch. Elsewhere: nothing.
import importlib.metadata as md, importlib.util, os, subprocess, sys, tempfile

REPOSITORY, RELEASE = "https://github.com/lga-book/lga-book", "v0.1.0"
ON_COLAB = "google.colab" in sys.modules or os.environ.get("LGA_FORCE_COLAB") == "1"
installed = ""
if ON_COLAB and importlib.util.find_spec("lga") is None:
    source = os.environ.get("LGA_INSTALL_SOURCE")
    if not source:   # this page's release; its branch `main` until the release is tagged
        tag = subprocess.run(["git", "ls-remote", "--exit-code", "--tags", REPOSITORY, RELEASE],
                             capture_output=True).returncode == 0
        source = f"git+{REPOSITORY}@{RELEASE if tag else 'main'}"
    keep = [f"{d}=={md.version(d)}" for d in ("torch", "torchvision")
            if importlib.util.find_spec(d)]
    pins = os.path.join(tempfile.mkdtemp(), "keep.txt")   # pip may not replace these
    with open(pins, "w") as f:
        f.write("\n".join(keep) + "\n")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", pins, source],
                         capture_output=True, text=True)
    if pip.returncode:
        raise RuntimeError(f"pip could not install lga from {source}:\n{pip.stderr[-2000:]}")
    importlib.invalidate_caches()
    installed = f"installed lga from {source} (kept {', '.join(keep) or 'no torch'}); "
if "google.colab" in sys.modules:
    from google.colab import output
    output.enable_custom_widget_manager()   # Colab needs this for ipywidgets 8

from lga.config import select_profile
profile = select_profile("auto")   # change to "paper" or "cpu" to force a profile
print(f"{installed}lga {md.version('lga')}, profile: {profile.name} ({profile.why})")
