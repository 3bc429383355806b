import torch

from vitr.data.cache import CachedFeatures, FeatureCache, feature_key, file_digest, namespace_for


def _feat(seed: int) -> CachedFeatures:
    g = torch.Generator().manual_seed(seed)
    return CachedFeatures(torch.randn(12, 8, generator=g), torch.ones(12), torch.arange(12.0))


def test_round_trip_and_reopen(tmp_path):
    cache = FeatureCache(tmp_path, "ns")
    with cache.writer(shard_size=2) as w:
        for i in range(5):
            w.add(f"k{i}", _feat(i))
    cache.close()
    reopened = FeatureCache(tmp_path, "ns")
    assert len(reopened) == 5
    assert torch.equal(reopened.get("k3").frames, _feat(3).frames)
    frames, mask = reopened.stacked(["k4", "k0"])
    assert frames.shape == (2, 12, 8) and torch.equal(frames[1], _feat(0).frames)


def test_unflushed_writes_are_not_visible_and_are_redone(tmp_path):
    cache = FeatureCache(tmp_path, "ns")
    w = cache.writer(shard_size=10)
    w.add("a", _feat(1))  # a crash before flush: nothing committed, nothing half-written
    assert "a" not in cache and cache.missing(["a", "b", "a"]) == ["a", "b"]
    w.flush()
    assert "a" in cache and not list(tmp_path.glob("ns/.*partial"))


def test_keys_follow_content_not_name(tmp_path):
    a, b, c = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "c.bin"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    c.write_bytes(b"other bytes")
    assert file_digest(a) == file_digest(b) != file_digest(c)
    assert feature_key(file_digest(a)) != feature_key(file_digest(a), 0.0, 5.0)
    assert namespace_for("model-1", "spec") != namespace_for("model-2", "spec")


def test_duplicate_adds_are_ignored(tmp_path):
    cache = FeatureCache(tmp_path, "ns")
    with cache.writer(shard_size=1) as w:
        w.add("k", _feat(1))
        w.add("k", _feat(2))
    assert len(cache) == 1 and torch.equal(cache.get("k").frames, _feat(1).frames)
