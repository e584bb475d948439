"""The notebook example of docs/api.md: evaluate a model held in memory, then gate the result.

    python docs/examples/evaluate_and_gate.py

Trains a small CNN on scikit-learn's bundled 8×8 digits for three epochs, attacks it with FGSM
and PGD at ε = 0.1 and 0.3 through `robustinv.evaluate`, and judges the result with
`robustinv.gate`. Needs no data files and no network; about a minute on two CPU cores.
"""

# %% [1] A model in hand: a small CNN trained on the bundled digits
import torch

import robustinv
from robustinv.data import load_dataset
from robustinv.models.zoo import smallcnn
from robustinv.training.recipe import TrainRecipe

torch.manual_seed(0)
digits = load_dataset("digits")
model = smallcnn(digits.input_shape, digits.num_classes)
recipe = TrainRecipe(epochs=3, batch_size=32, lr=0.003)
seconds = robustinv.train(model, digits.x_train, digits.y_train, recipe, seed=0)
print(f"{len(digits.x_train)} training images {tuple(digits.x_train.shape[1:])}, {digits.num_classes} classes; "
      f"trained 3 epochs in {seconds:.1f} s")

# %% [2] Attack it: FGSM and a 10-step PGD at two ε, on the test split
x_test, y_test = digits.x_test, digits.y_test
result = robustinv.evaluate(
    model, (x_test, y_test), name="smallcnn", eps=[0.1, 0.3],
    attacks=["fgsm", {"name": "pgd", "steps": 10, "step_size": 0.05}],
    n_explain=0,
)
columns = ["attack", "eps", "n", "clean_acc", "robust_acc", "robust_acc_low", "robust_acc_high", "flags"]
print(result.to_frame()[columns].round(4).to_string(index=False))

# %% [3] Gate it, as a test in the model's repository would
verdict = robustinv.gate(result, {"rules": [
    {"metric": "clean_acc", "min": 0.9},
    {"metric": "robust_acc", "attack": "worst_case", "eps": 0.1, "min": 0.4, "bound": "low"},
    {"metric": "robust_acc", "attack": "worst_case", "eps": 0.3, "min": 0.2, "level": "warn"},
]})
print(verdict.summary)
print("passed:", verdict.passed)
