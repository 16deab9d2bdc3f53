from tests.conftest import needs_root
from tests.support.kernel import LabKernel


@needs_root
def test_lab_runs_as_user(platform):
    name = platform.add_user("alice")
    token = platform.token(name)
    platform.start_lab(name, token)
    k = LabKernel(platform.url, name, token)
    try:
        out = k.run("import subprocess; print(subprocess.check_output(['id','-un'], text=True).strip(), 6*7)")
    finally:
        k.close()
    assert out.split() == [name, "42"]
