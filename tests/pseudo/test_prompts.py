import torch
import torch.nn.functional as F

from vitr.pseudo.prompts import category_classifier, ensemble_embeddings, prompts_for
from vitr.pseudo.vocab import Category


def test_prompts_are_concept_major_and_modes_differ():
    cat = Category("objects", ("dog", "cat"), ("a photo of a {}.", "art of the {}."))
    prompts, p = prompts_for(cat)
    assert p == 2 and prompts == ["a photo of a dog.", "art of the dog.", "a photo of a cat.", "art of the cat."]
    assert prompts_for(cat, "first") == (["a photo of a dog.", "a photo of a cat."], 1)
    assert prompts_for(cat, "bare") == (["dog", "cat"], 1)


def test_ensembling_normalises_before_and_after_the_mean():
    # concept 0: two templates along x, one of them 10x longer: the mean must not favour the long one
    e = torch.tensor([[10.0, 0.0], [0.0, 1.0], [3.0, 4.0], [3.0, 4.0]])
    w = ensemble_embeddings(e, num_templates=2)
    assert torch.allclose(w[0], torch.tensor([1.0, 1.0]) / 2**0.5)
    assert torch.allclose(w[1], torch.tensor([0.6, 0.8]))
    assert torch.allclose(w.norm(dim=-1), torch.ones(2))


def test_ensemble_of_one_template_is_the_normalised_embedding():
    e = torch.randn(5, 8)
    assert torch.allclose(ensemble_embeddings(e, 1), F.normalize(e, dim=-1))


def test_category_classifier_on_a_tiny_model(tiny_backbone):
    cat = Category("objects", ("red circle", "blue square", "green cross"), ("a {}", "there is a {}"))
    w = category_classifier(tiny_backbone, cat)
    assert w.shape == (3, tiny_backbone.embed_dim)
    assert torch.allclose(w.norm(dim=-1), torch.ones(3), atol=1e-5)
