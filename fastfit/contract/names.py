"""Canonical names shared by both engines.

The Cython engine uses the index of a name in these tuples as its integer code, so the order is fixed
(docs/architecture.md): append new names at the end, never reorder.
"""

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "softsign",
               "hard_sigmoid", "exponential")

LOSSES = ("mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
          "mean_squared_logarithmic_error", "squared_hinge", "hinge", "categorical_hinge", "logcosh",
          "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
          "kullback_leibler_divergence", "poisson", "cosine_proximity")

METRICS = LOSSES + ("binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy")

OPTIMIZERS = ("sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam")

# Losses the engines compute for tf.keras loss objects with `from_logits=True` (compile takes them only through
# `fastfit.losses.CategoricalCrossentropy(from_logits=True)` and its siblings, never as strings): the network
# output is the logits z, and the loss applies softmax (categorical) or sigmoid (binary) inside.
FROM_LOGITS_LOSSES = ("categorical_crossentropy_from_logits", "sparse_categorical_crossentropy_from_logits",
                      "binary_crossentropy_from_logits")

# Every loss and metric the engines compute; the index of a name here is its Cython code.
ENGINE_NAMES = METRICS + FROM_LOGITS_LOSSES
ENGINE_LOSSES = LOSSES + FROM_LOGITS_LOSSES
ENGINE_METRICS = METRICS

# Losses whose targets are integer labels of shape (n,).
SPARSE_LOSSES = ("sparse_categorical_crossentropy", "sparse_categorical_crossentropy_from_logits")

# Metrics that accept integer labels (the only metrics allowed with a sparse loss).
SPARSE_METRICS = ("sparse_categorical_crossentropy", "sparse_categorical_accuracy",
                  "sparse_top_k_categorical_accuracy")

# Keras 2 fuzz factor (keras.backend.epsilon()).
EPSILON = 1e-7

# Core ops beyond ('dense', ...), ('activation', name) and ('dropout', rate, seed) (docs/architecture.md,
# "The engine contract"); `checks.check_layer_op` validates them for both engines.
LAYER_OPS = ("penalty", "constraint", "activity_regularization", "relu", "elu", "prelu", "batch_normalization",
             "gaussian_noise", "gaussian_dropout", "alpha_dropout")

# Ops whose noise is drawn only in training (identity in evaluate and predict).
NOISE_OPS = ("gaussian_noise", "gaussian_dropout", "alpha_dropout")

# Weight constraints, in the order of their Cython codes.
CONSTRAINTS = ("max_norm", "non_neg", "unit_norm", "min_max_norm")

# SELU's constants (AlphaDropout keeps the SELU fixed point).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
