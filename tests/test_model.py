import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arc_trm.config import load_config
from arc_trm.infer.inference import predict_logits
from arc_trm.model.losses import act_loss, log_stablemax, token_cross_entropy
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.cores.trm.module import TRM
from arc_trm.model.recursion import Carry, act_step, admit, dense_parameter_count
from tests.helpers import run_two_processes, tiny_config, tiny_runner


def _model(seq=16):
    torch.manual_seed(0)
    return TRM(tiny_config().model, seq)


def _batch(b, seq=16, ids=5):
    g = torch.Generator().manual_seed(b)
    return {"inputs": torch.randint(0, 12, (b, seq), generator=g, dtype=torch.int32),
            "labels": torch.randint(0, 12, (b, seq), generator=g),
            "puzzle_ids": torch.randint(1, ids, (b,), generator=g, dtype=torch.int32)}


def test_paper_parameter_count():
    for preset in ("trm-paper-att",):
        n = dense_parameter_count(TRM(load_config(preset).model, 900))
        print(f"{preset}: {n / 1e6:.3f} M dense parameters")
        assert abs(n - 6.8e6) <= 0.1e6


@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("mlp_t", [False, True])
def test_shapes(b, mlp_t):
    cfg = tiny_config().model
    cfg.mlp_t = mlp_t
    m = TRM(cfg, 16)
    table = PuzzleEmbeddings(5, cfg.hidden_size)
    batch = _batch(b)
    carry, out = act_step(m, cfg, Carry.initial(m, batch), batch, lambda i: table.lookup(i, True), True)
    assert out["logits"].shape == (b, 16, 12) and out["q_halt"].shape == (b,)
    assert carry.z_H.shape == (b, 16 + cfg.puzzle_emb_len, cfg.hidden_size)


def test_no_gradient_reaches_the_no_grad_cycles():
    m = _model()
    probe = torch.nn.Parameter(torch.zeros(m.cfg.hidden_size))
    plain_f = m.f

    def f(z, inj):  # the probe takes part only when autograd is off
        out = plain_f(z, inj)
        return out if torch.is_grad_enabled() else out + probe
    m.f = f
    table = PuzzleEmbeddings(5, m.cfg.hidden_size)
    batch = _batch(2)
    _, out = act_step(m, m.cfg, Carry.initial(m, batch), batch, lambda i: table.lookup(i, True), True)
    loss, *_ = act_loss(out["logits"], out["q_halt"], out["data"]["labels"])
    loss.backward()
    assert probe.grad is None
    assert all(p.grad is not None for p in m.parameters())
    assert out["puzzle_emb"].grad is not None


def test_carry_reset_on_halted_slots():
    m = _model()
    table = PuzzleEmbeddings(5, m.cfg.hidden_size)
    b1, b2 = _batch(3), _batch(4)
    b2 = {k: v[:3] for k, v in b2.items()}            # three other samples
    assert not torch.equal(b1["inputs"], b2["inputs"])
    assert all(not torch.equal(b1["inputs"][i], b2["inputs"][i]) for i in range(3))
    carry, _ = act_step(m, m.cfg, Carry.initial(m, b1), b1, lambda i: table.lookup(i, False), True)
    carry.halted = torch.tensor([True, False, False])
    carry.steps = torch.tensor([2, 1, 1], dtype=torch.int32)
    data, reset, steps = admit(carry, b2)
    assert torch.equal(data["inputs"][0], b2["inputs"][0]) and torch.equal(data["inputs"][1], b1["inputs"][1])
    assert steps.tolist() == [0, 1, 1] and reset.tolist() == [True, False, False]
    new, _ = act_step(m, m.cfg, carry, b2, lambda i: table.lookup(i, False), True)
    assert new.steps.tolist() == [1, 2, 2]
    # a reset slot starts from the initial state: same result as a fresh carry on that sample
    fresh, _ = act_step(m, m.cfg, Carry.initial(m, b2), b2, lambda i: table.lookup(i, False), True)
    assert torch.allclose(new.z_H[0], fresh.z_H[0], atol=1e-5)
    assert not torch.allclose(new.z_H[1], fresh.z_H[1], atol=1e-3)


def test_evaluation_runs_exactly_halt_max_steps():
    runner = tiny_runner(tiny_config(), 16)
    m, table = runner.model, runner.table
    m.eval()
    with torch.no_grad():
        m.q_head.bias.fill_(10.0)  # the halt head says "stop now" everywhere
    calls = []
    m.register_forward_hook(lambda *a: calls.append(1))
    predict_logits(runner, _batch(2))
    assert len(calls) == m.cfg.halt_max_steps
    # in training the same halt logits stop every slot after one step
    batch = _batch(2)
    carry, _ = act_step(m, m.cfg, Carry.initial(m, batch), batch, lambda i: table.lookup(i, False), True)
    assert carry.halted.all()


def test_stablemax_matches_float64_hand_computation():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)) * 3
    labels = np.array([[0, 4, -100], [2, -100, 1]])
    got = token_cross_entropy(torch.tensor(logits, dtype=torch.float32), torch.tensor(labels)).numpy()
    for i in range(2):
        for j in range(3):
            if labels[i, j] == -100:
                assert got[i, j] == 0
                continue
            s = np.where(logits[i, j] >= 0, logits[i, j] + 1, 1 / (1 - logits[i, j]))
            want = -np.log(s[labels[i, j]] / s.sum())
            assert abs(got[i, j] - want) < 1e-5
    assert torch.allclose(log_stablemax(torch.zeros(4)).exp().sum(), torch.tensor(1.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", ["stablemax", "softmax"])
def test_the_loss_keeps_no_float64_tensor_for_the_backward_and_gives_the_same_gradient(dtype, kind):
    """The token loss runs again in the backward instead of keeping its float64 intermediates (what kept
    arc-trm's peak memory above the references'): only the logits (their dtype) and the labels are kept,
    and the loss and the logits' gradient are the bits the plain autograd graph gives."""
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 100, 12, generator=g) * 5).to(dtype)
    labels = torch.randint(0, 12, (4, 100), generator=g)
    labels[:, 90:] = -100
    q = torch.randn(4, generator=g)
    got = {}
    for name, recompute in (("recomputed", True), ("plain", False)):
        kept = []

        def pack(t):
            kept.append((t.dtype, t.numel()))
            return t
        xl = x.clone().requires_grad_(True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            if recompute:
                loss, *_ = act_loss(xl, q, labels, kind)
            else:
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr("arc_trm.model.losses.recomputed_cross_entropy", token_cross_entropy)
                    loss, *_ = act_loss(xl, q, labels, kind)
        loss.backward()
        got[name] = (loss.detach(), xl.grad, kept)
    assert torch.equal(got["recomputed"][0], got["plain"][0]) and torch.equal(got["recomputed"][1], got["plain"][1])
    big = [k for k in got["recomputed"][2] if k[1] >= x.numel()]
    assert big and all(d != torch.float64 for d, _ in big)                    # the logits, in their own dtype
    if kind == "stablemax":                                                  # the plain graph kept float64 copies
        assert sum(d == torch.float64 and n >= x.numel() for d, n in got["plain"][2]) >= 3


def test_sign_sgd_touches_only_batch_rows():
    t = PuzzleEmbeddings(100, 8)
    t.weight.normal_()
    before = t.weight.clone()
    ids = torch.tensor([3, 7, 3, 0])
    grads = torch.randn(4, 8)
    t.sign_sgd_step(ids, grads, lr=0.1, weight_decay=0.5)
    changed = (t.weight != before).any(1).nonzero().flatten().tolist()
    assert changed == [3, 7]  # blank ID 0 never trained
    want3 = before[3] * (1 - 0.05) - 0.1 * torch.sign(grads[0] + grads[2])
    assert torch.allclose(t.weight[3], want3)


def _gather_worker(path):
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    torch.manual_seed(0)
    ids = torch.tensor([1, 2, 3, 4, 2, 5, 6, 1])
    grads = torch.randn(8, 4)
    t = PuzzleEmbeddings(10, 4)
    half = slice(acc.process_index * 4, acc.process_index * 4 + 4)
    t.sign_sgd_step(ids[half], grads[half], 0.1, 0.1, acc.gather)
    if acc.is_main_process:
        torch.save(t.weight, path)


def test_sign_sgd_two_processes_equal_one(tmp_path):
    run_two_processes("tests.test_model", "_gather_worker", str(tmp_path / "two.pt"))
    torch.manual_seed(0)
    ids = torch.tensor([1, 2, 3, 4, 2, 5, 6, 1])
    grads = torch.randn(8, 4)
    one = PuzzleEmbeddings(10, 4)
    one.sign_sgd_step(ids, grads, 0.1, 0.1)
    two = torch.load(tmp_path / "two.pt")
    assert torch.equal(one.weight, two) and (one.weight[1:7] != 0).all()


def test_halt_early_freezes_each_answer_at_its_first_confident_step():
    runner = tiny_runner(tiny_config(), 16)
    m, table = runner.model, runner.table
    batch = _batch(2)
    emb = lambda i: table.lookup(i, False)  # noqa: E731
    with torch.no_grad():
        m.q_head.weight.zero_()
        m.q_head.bias.fill_(-10.0)  # never confident: every step runs, the last answer counts
        full, _ = predict_logits(runner, batch, halt_early=True)
        paper, _ = predict_logits(runner, batch)
        torch.testing.assert_close(full, paper)
        m.q_head.bias.fill_(10.0)   # confident at once: the first step's answer is kept
        calls = []
        hook = m.register_forward_hook(lambda *a: calls.append(1))
        early, q = predict_logits(runner, batch, halt_early=True)
        hook.remove()
        _, first = act_step(m, m.cfg, Carry.initial(m, batch), batch, emb, False)
    assert len(calls) == 1  # the batch stops once every sample has halted
    torch.testing.assert_close(early, first["logits"])
    assert (q > 0).all()


@pytest.mark.parametrize("autocast", [False, True])
def test_bfloat16_stream_computes_nearly_what_the_float32_stream_computes(autocast):
    """model.stream_dtype = "bfloat16" (the reference's forward_dtype) carries z_H / z_L in bf16,
    with and without autocast, and its loss and gradients stay near those of the exact float32
    stream with the same weights."""
    cfg32 = tiny_config().model
    cfg16 = dataclasses.replace(cfg32, stream_dtype="bfloat16")
    m32 = _model()
    m16 = TRM(cfg16, 16)
    m16.load_state_dict(m32.state_dict())
    table = PuzzleEmbeddings(5, cfg32.hidden_size)
    batch = _batch(4)
    results = []
    for m, cfg in ((m32, cfg32), (m16, cfg16)):
        carry = Carry.initial(m, batch)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            for _ in range(2):   # the second step starts from the carried state
                carry, out = act_step(m, cfg, carry, batch, lambda i: table.lookup(i, False), False)
            loss, *_ = act_loss(out["logits"], out["q_halt"], out["data"]["labels"], cfg.loss)
        loss.backward()
        results.append((carry, loss.detach(), torch.cat([p.grad.flatten() for p in m.parameters()])))
    (c32, l32, g32), (c16, l16, g16) = results
    assert c32.z_H.dtype == torch.float32 and c16.z_H.dtype == c16.z_L.dtype == torch.bfloat16
    assert g16.dtype == torch.float32 and torch.isfinite(g16).all()
    assert abs(l16 - l32) < 0.02 * abs(l32), (l16, l32)
    assert F.cosine_similarity(g16, g32, dim=0) > 0.99
