import os
import pickle

import pytest

from ratlip_layers.data import DataFileError, UnsafePickleError, load_filenames


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("container", [list, tuple])
def test_reads_lists_and_tuples_of_strings(tmp_path, protocol, container):
    keys = ["001.Black_footed_Albatross/Black_Footed_Albatross_0046_18", "002.Laysan/Laysan_0001"]
    path = tmp_path / "filenames.pickle"
    path.write_bytes(pickle.dumps(container(keys), protocol=protocol))
    assert load_filenames(path) == keys


def test_reads_python2_byte_strings_as_latin1(tmp_path):
    # What Python 2's pickle.dump(['caf\xe9/x'], f, 2) writes: SHORT_BINSTRING opcodes.
    data = b"\x80\x02]q\x00U\x06caf\xe9/xq\x01a."
    path = tmp_path / "filenames.pickle"
    path.write_bytes(data)
    assert load_filenames(path) == ["caf\xe9/x"]


def test_refuses_code_execution_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "filenames.pickle"
    path.write_bytes(pickle.dumps([_Exploit(marker)]))
    with pytest.raises(
        UnsafePickleError, match=r"refusing to load (posix|os)\.system.*lists, tuples and strings"
    ):
        load_filenames(path)
    assert not marker.exists()
    assert str(path) in str(pytest.raises(UnsafePickleError, load_filenames, path).value)


@pytest.mark.parametrize(
    "obj, what",
    [
        ({"a": "b"}, "dict"),
        (["a", 1], "item 1 is int"),
        ([["a"]], "item 0 is list"),
        ({"a"}, "set"),
        ("abc", "str"),
    ],
)
def test_refuses_other_containers_and_items(tmp_path, obj, what):
    path = tmp_path / "filenames.pickle"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(UnsafePickleError, match=what):
        load_filenames(path)


def test_missing_and_garbage_files_name_the_path(tmp_path):
    with pytest.raises(DataFileError, match="missing.pickle"):
        load_filenames(tmp_path / "missing.pickle")
    garbage = tmp_path / "garbage.pickle"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(DataFileError, match="garbage.pickle is not a readable pickle"):
        load_filenames(garbage)
