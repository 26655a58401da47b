"""`fastfit demo`: train an MLP on the bundled digits with the callbacks a real run uses."""
import os
import time

from fastfit.cli.timing import compare_engines, describe_ratio, format_seconds

TARGET_ACCURACY = 0.95
CHECKPOINT = "best_model.h5"
CSV_LOG = "training_log.csv"
PLOT = "history.png"


def add_arguments(parser):
    parser.add_argument("--out", default="fastfit_demo_output",
                        help="folder for the checkpoint, the CSV log and the plot (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=60, help="maximum epochs; early stopping usually "
                        "ends sooner (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=128, help="units of the hidden layer (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and shuffling (default: 0)")
    parser.add_argument("--engine", choices=["cython", "python"], default=None,
                        help="engine of the main run (default: $FASTFIT_ENGINE, else cython)")
    parser.add_argument("--compare-epochs", type=int, default=10,
                        help="epochs timed on each engine for the speed comparison, 0 to skip "
                        "(default: %(default)s)")
    parser.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1,
                        help="progress output of fit: 0 silent, 1 progress bar, 2 one line per epoch")


def build_model(hidden, engine):
    """The demo MLP: 64 -> hidden relu -> 10 softmax, Adam, sparse categorical cross-entropy."""
    from fastfit.layers import Dense
    from fastfit.models import Sequential

    model = Sequential()
    model.add(Dense(hidden, input_dim=64, activation="relu"))
    model.add(Dense(10, activation="softmax"))
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["acc"], engine=engine)
    return model


def _check(args):
    for name in ("epochs", "batch_size", "hidden"):
        if getattr(args, name) < 1:
            raise SystemExit(f"fastfit demo: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.compare_epochs < 0:
        raise SystemExit(f"fastfit demo: --compare-epochs must be >= 0, got {args.compare_epochs}")


def _write_plot(history, out, say):
    try:
        from fastfit.utils.plotting import plot_history
        path = plot_history(history, os.path.join(out, PLOT))
    except ImportError:
        say("Plot: skipped, matplotlib is not installed (pip install \"fastfit[plot]\").")
        return None
    say(f"Plot of the training curves: {path}")
    return path


def run(args, say=print):
    """Run the demo; return a dict of what it measured (used by the tests)."""
    from fastfit.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint
    from fastfit.datasets import load_digits
    from fastfit.core import resolve_core
    from fastfit.models import load_model
    from fastfit.utils import set_random_seed

    _check(args)
    engine = resolve_core(args.engine)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load_digits()
    say(f"fastfit demo: a 64-{args.hidden}-10 MLP on the UCI handwritten digits (8x8 images, "
        f"{len(x_train)} train / {len(x_test)} test), {engine} engine")
    say(f"Output folder: {out}")

    set_random_seed(args.seed)
    model = build_model(args.hidden, engine)
    callbacks = [
        EarlyStopping(monitor="val_loss", patience=5, verbose=1, restore_best_weights=True),
        ModelCheckpoint(os.path.join(out, CHECKPOINT), monitor="val_loss", save_best_only=True),
        CSVLogger(os.path.join(out, CSV_LOG)),
    ]
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, validation_split=0.1,
                        callbacks=callbacks, verbose=args.verbose)
    train_seconds = time.perf_counter() - start
    epochs_run = len(history.epoch)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    say("")
    say(f"Test accuracy: {accuracy:.2%} on {len(x_test)} held-out images (loss {loss:.4f})"
        + ("" if accuracy >= TARGET_ACCURACY else f"  [below the expected {TARGET_ACCURACY:.0%}]"))
    say(f"Training time: {format_seconds(train_seconds)} for {epochs_run} epochs "
        f"(early stopping restored the best epoch's weights)")
    reloaded = load_model(os.path.join(out, CHECKPOINT))
    _, reloaded_accuracy = reloaded.evaluate(x_test, y_test, batch_size=256, verbose=0)
    say(f"Best checkpoint {CHECKPOINT} reloaded: test accuracy {reloaded_accuracy:.2%}")
    say(f"Per-epoch log: {os.path.join(out, CSV_LOG)}")
    plot = _write_plot(history, out, say)

    comparison = None
    if args.compare_epochs:
        comparison = compare_engines(lambda name: build_model(args.hidden, name), x_train, y_train,
                                     args.compare_epochs, args.batch_size, args.seed)
        if comparison is None:
            say("Engine comparison: skipped, the compiled extensions are not built (see `fastfit info`).")
        else:
            say(f"Engine comparison (same model and data, median of {args.compare_epochs} epochs): "
                f"cython {format_seconds(comparison['cython'])}/epoch, NumPy reference "
                f"{format_seconds(comparison['python'])}/epoch -> the Cython engine was "
                f"{describe_ratio(comparison['ratio'])}")
    return {"accuracy": accuracy, "loss": loss, "epochs": epochs_run, "seconds": train_seconds,
            "reloaded_accuracy": reloaded_accuracy, "comparison": comparison, "plot": plot, "out": out,
            "engine": engine}
