import pytest
import torch

from vitr.losses.distill import aggregate_teachers, distillation_loss, teachtext_loss


def hand_huber(d: float, beta: float = 1.0) -> float:
    return 0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta


def test_huber_mean_aggregation_matches_hand_computation_over_all_entries():
    student = torch.tensor([[0.9, -0.2], [0.1, 0.5]])
    t1 = torch.tensor([[0.7, 0.4], [-1.5, 0.5]])
    t2 = torch.tensor([[0.5, 0.0], [-2.5, -0.5]])
    # mean teacher: [[0.6, 0.2], [-2.0, 0.0]]; differences: 0.3, -0.4, 2.1, 0.5 (one in the L1 regime)
    expected = (hand_huber(0.3) + hand_huber(-0.4) + hand_huber(2.1) + hand_huber(0.5)) / 4
    assert distillation_loss(student, [t1, t2]).item() == pytest.approx(expected, abs=1e-6)


def test_diagonal_counts_and_beta_changes_the_regime():
    student = torch.zeros(3, 3)
    teacher = torch.eye(3) * 0.8
    assert distillation_loss(student, [teacher]).item() == pytest.approx(3 * 0.5 * 0.64 / 9)
    assert distillation_loss(student, [teacher], beta=0.5).item() == pytest.approx(3 * (0.8 - 0.25) / 9)


def test_l1_l2_and_weighted_aggregation():
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t1, t2 = torch.zeros(2, 2), torch.ones(2, 2)
    target = aggregate_teachers([t1, t2], "weighted", [3.0, 1.0])  # 0.25 everywhere
    assert torch.allclose(target, torch.full((2, 2), 0.25))
    l1 = distillation_loss(student, [t1, t2], "weighted", [3.0, 1.0], loss="l1")
    l2 = distillation_loss(student, [t1, t2], "weighted", [3.0, 1.0], loss="l2")
    assert l1.item() == pytest.approx((0.75 * 2 + 0.25 * 2) / 4)
    assert l2.item() == pytest.approx((0.75**2 * 2 + 0.25**2 * 2) / 4)


def test_gradient_reaches_only_the_student_and_points_to_the_teacher():
    student = torch.zeros(2, 2, requires_grad=True)
    teacher = torch.full((2, 2), 0.5, requires_grad=True)
    distillation_loss(student, [teacher]).backward()
    assert teacher.grad is None
    assert (student.grad < 0).all()  # increasing the student's scores moves them towards the teacher's


def test_teachtext_loss_adds_weighted_distillation_to_retrieval():
    student, teacher = torch.zeros(2, 2), torch.full((2, 2), 0.4)
    retrieval = torch.tensor(2.0)
    distill = distillation_loss(student, [teacher])
    assert teachtext_loss(retrieval, student, [teacher]).item() == pytest.approx(2.0 + distill.item())
    assert teachtext_loss(retrieval, student, [teacher], weight=3.0).item() == pytest.approx(2.0 + 3 * distill.item())


@pytest.mark.parametrize(
    "kwargs",
    [{"aggregation": "weighted"}, {"weights": [1.0]}, {"aggregation": "max"}, {"loss": "kl"}, {"beta": 0.0}],
)
def test_bad_options_are_rejected(kwargs):
    with pytest.raises(ValueError):
        distillation_loss(torch.zeros(2, 2), [torch.zeros(2, 2)], **kwargs)


def test_teacher_matrix_of_another_batch_shape_is_rejected():
    with pytest.raises(ValueError, match="do not match"):
        distillation_loss(torch.zeros(2, 2), [torch.zeros(3, 3)])
    with pytest.raises(ValueError, match="at least one"):
        distillation_loss(torch.zeros(2, 2), [])
