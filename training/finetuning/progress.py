"""What a fine-tuning seed shows while it trains (nucel/console.py's rule): one bar in step/s with the latest
training loss and dev metric in its postfix; without a bar (a log file, --progress-bar off) one line per
evaluation; under --quiet nothing. The Trainer's own output (a dict printed per log, a bar per evaluation and
prediction) is replaced by this callback: `show_progress(trainer, ...)`."""

import contextlib

from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from nucel import console


class TrainingProgress(TrainerCallback):
    """The Trainer's progress as this package shows it; `label` names the seed (and the --lr candidate)."""

    def __init__(self, label: str, primary: str):
        self.label, self.primary = label, primary
        self.bar, self.lines, self.done, self.shown = None, False, 0, {}
        self.quieted = contextlib.ExitStack()  # library messages this callback answers for while training

    def on_train_begin(self, args, state, control, **kwargs):
        # erased when the seed ends: its result line (run.py) takes its place
        self.bar = console.progress(state.max_steps, initial=state.global_step, unit="step", desc=self.label,
                                    leave=False)
        self.lines, self.done = console.progress_lines(self.bar), state.global_step
        self.quieted.enter_context(console.library_message_as_note("transformers.trainer_utils",
                                                                   scratch_checkpoint_order))

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.done)
            self.done = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        evaluated = f"eval_{self.primary}" in logs
        if "loss" in logs:
            self.shown["loss"] = f"{logs['loss']:.4f}"
        if evaluated:
            self.shown[f"dev {self.primary}"] = f"{logs[f'eval_{self.primary}']:.4f}"
        if self.bar is not None and ("loss" in logs or evaluated):
            self.bar.set_postfix(self.shown)
        if evaluated and self.lines:
            print(f"{self.label}, step {state.global_step}/{state.max_steps}: "
                  + ", ".join(f"{key} {value}" for key, value in self.shown.items()), flush=True)

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.quieted.close()


def scratch_checkpoint_order(message):
    """The Trainer's warning that it orders its checkpoints by number where file times are coarse: it orders this
    run's scratch checkpoints, which the run deletes; nothing to tell."""
    return "" if message.startswith("mtime may not be reliable") else None


def show_progress(trainer, label: str, primary: str) -> TrainingProgress:
    """Replace the Trainer's progress output by a `TrainingProgress` (returned: close it if training fails)."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    shown = TrainingProgress(label, primary)
    trainer.add_callback(shown)
    return shown
