"""The folder reader of `brainkit metrics` (real/ + recon/ and strips) and the CLI command, incl. CLIP features."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clip_fixture import write_tiny_clip
from PIL import Image

from brainkit.cli import main
from brainkit.errors import FileFormatError
from brainkit.evaluation.image_pairs import read_image_pairs
from brainkit.evaluation.reconstruction import reconstruction_metrics


def _image(seed: int, size: tuple[int, int] = (24, 20)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def _save(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_real_recon_layout_with_single_and_numbered_samples(tmp_path):
    for i, name in enumerate(["b", "a", "c"]):
        _save(tmp_path / "real" / f"{name}.png", _image(i))
        for s in range(2):
            _save(tmp_path / "recon" / f"{name}_{s}.png", _image(10 * i + s))
    pairs = read_image_pairs(tmp_path)
    assert pairs.names == ("a", "b", "c") and pairs.layout == "real_recon"
    assert pairs.real.shape == (3, 20, 24, 3) and pairs.recon.shape == (3, 2, 20, 24, 3)
    assert np.array_equal(pairs.real[1], _image(0)) and np.array_equal(pairs.recon[0, 1], _image(11))
    single = tmp_path / "single"
    _save(single / "real" / "x.png", _image(1))
    _save(single / "recon" / "x.png", _image(2))
    _save(single / "real" / "x_1.png", _image(3))  # an exact name wins over "sample 1 of x"
    _save(single / "recon" / "x_1.png", _image(4))
    pairs = read_image_pairs(single)
    assert pairs.names == ("x", "x_1") and pairs.recon.shape == (2, 1, 20, 24, 3)
    assert np.array_equal(pairs.recon[1, 0], _image(4))


def test_missing_partners_and_bad_files_are_named(tmp_path):
    _save(tmp_path / "real" / "a.png", _image(0))
    _save(tmp_path / "real" / "b.png", _image(1))
    _save(tmp_path / "recon" / "a.png", _image(2))
    with pytest.raises(FileFormatError, match=r"1 real image\(s\) have no reconstruction.*\['b'\]"):
        read_image_pairs(tmp_path)
    _save(tmp_path / "recon" / "b.png", _image(3))
    _save(tmp_path / "recon" / "zebra.png", _image(4))
    with pytest.raises(FileFormatError, match=r"have no real image.*zebra.png"):
        read_image_pairs(tmp_path)
    (tmp_path / "recon" / "zebra.png").unlink()
    _save(tmp_path / "recon" / "b_0.png", _image(5))
    with pytest.raises(FileFormatError, match="'b' has both b.png and numbered samples"):
        read_image_pairs(tmp_path)
    (tmp_path / "recon" / "b_0.png").unlink()
    _save(tmp_path / "recon" / "a_1.png", _image(5))
    (tmp_path / "recon" / "a.png").rename(tmp_path / "recon" / "a_0.png")
    with pytest.raises(FileFormatError, match="different numbers of samples"):
        read_image_pairs(tmp_path)
    (tmp_path / "recon" / "a_1.png").unlink()
    _save(tmp_path / "real" / "a.png", _image(0, size=(30, 30)))
    with pytest.raises(FileFormatError, match="different sizes.*pass image_size"):
        read_image_pairs(tmp_path)
    assert read_image_pairs(tmp_path, image_size=16).real.shape == (2, 16, 16, 3)
    (tmp_path / "real" / "b.png").write_bytes(b"not an image")
    with pytest.raises(FileFormatError, match=r"Cannot read image .*b.png"):
        read_image_pairs(tmp_path)
    with pytest.raises(FileFormatError, match="has real/ but no recon/"):
        (tmp_path / "lonely" / "real").mkdir(parents=True)
        read_image_pairs(tmp_path / "lonely")
    with pytest.raises(FileFormatError, match="no real/ folder and no image files"):
        read_image_pairs(tmp_path / "lonely" / "real")


def test_strip_layout(tmp_path):
    tiles = [_image(i, size=(16, 16)) for i in range(6)]
    _save(tmp_path / "one.png", np.concatenate(tiles[:3], axis=1))  # real | sample 1 | sample 2
    _save(tmp_path / "two.png", np.concatenate(tiles[3:], axis=1))
    pairs = read_image_pairs(tmp_path)
    assert pairs.layout == "strips" and pairs.names == ("one", "two")
    assert pairs.real.shape == (2, 16, 16, 3) and pairs.recon.shape == (2, 2, 16, 16, 3)
    assert np.array_equal(pairs.real[1], tiles[3]) and np.array_equal(pairs.recon[0, 1], tiles[2])
    _save(tmp_path / "three.png", np.concatenate(tiles[:2], axis=1)[:, :-3])
    with pytest.raises(FileFormatError, match="needs a width that is a multiple"):
        read_image_pairs(tmp_path)


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys, one_torch_thread):
    pytest.importorskip("efficientnet_lite_pytorch")
    from skimage import data

    photo = data.astronaut()
    for i in range(4):
        crop = photo[i * 60 : i * 60 + 256, i * 40 : i * 40 + 256]
        _save(tmp_path / "pairs" / "real" / f"img{i}.png", crop)
        _save(tmp_path / "pairs" / "recon" / f"img{i}.png", crop)
    out = tmp_path / "metrics.json"
    code = main(["metrics", str(tmp_path / "pairs"), "--out", str(out), "--trials", "20", "--seed", "3"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "4 image pairs (real_recon layout), 1 sample(s) each, 20 trials, seed 3" in printed
    assert (
        "EffNet-Lite0 pooled (ours) 2-way" in printed
        and "100.0% +- 0.0%" in printed
        and "shuffled" in printed
    )
    assert "50-way identification left out: it needs 50 image pairs, found 4." in printed
    saved = json.loads(out.read_text())
    assert saved["metrics"]["ssim"] == pytest.approx(1.0) and saved["metrics"]["trials"] == 20
    assert saved["shuffled_baseline"]["mse"] > 0 and saved["names"] == [f"img{i}" for i in range(4)]
    with pytest.raises(SystemExit):
        main(["metrics", str(tmp_path / "pairs"), "--n-way", "2,x"])
    assert "expected integers separated by commas" in capsys.readouterr().err
    assert main(["metrics", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_clip_feature_space_from_a_local_folder(tmp_path, one_torch_thread):
    pytest.importorskip("transformers")
    clip_dir = write_tiny_clip(tmp_path / "clip")
    real = np.stack([_image(i, size=(32, 32)) for i in range(5)])
    metrics = reconstruction_metrics(
        real, real, n_way=(2,), trials=10, feature_layers=(), semantic=False, clip_model_dir=clip_dir
    )
    assert metrics["clip_2way"] == 1.0 and metrics["clip_2way_chance"] == 0.5
