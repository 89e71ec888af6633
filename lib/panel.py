"""The slider panel of notebook 5: a trained model writes again whenever a setting changes.

    speaker(cfg, vocab, theta)   an ipywidgets VBox: a title, sliders for temperature, top-p and length,
                                 a seed and a priming text, a message line, and the passage

Every label is shown whole (a description width of its own, not the default that cuts "temperature"
short); a priming text with characters the model does not know is answered in the panel's message line,
and the passage keeps its last good state.
"""
import html

import ipywidgets as widgets

from lib.sample import passage

WIDE = {"description_width": "initial"}


def speaker(cfg, vocab, theta, title="Try it yourself: the best model writes", length=300):
    """The panel (a VBox). Its children are named after their roles in .controls (temperature, top_p,
    length, seed, prime), .message and .output, so that a test can drive it."""
    controls = {
        "temperature": widgets.FloatSlider(value=1.0, min=0.05, max=2.0, step=0.05, description="temperature",
                                           continuous_update=False, style=WIDE),
        "top_p": widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p",
                                     continuous_update=False, style=WIDE),
        "length": widgets.IntSlider(value=length, min=50, max=2000, step=50, description="characters",
                                    continuous_update=False, style=WIDE),
        "seed": widgets.BoundedIntText(value=0, min=0, max=2**31 - 1, description="seed", style=WIDE),
        "prime": widgets.Text(value="", placeholder="a newline", description="priming text",
                              continuous_update=False, style=WIDE),
    }
    message = widgets.HTML(value="")
    output = widgets.Output(layout=widgets.Layout(border="1px solid #ddd", padding="4px", min_height="4em"))

    def write(_=None):
        c = {k: w.value for k, w in controls.items()}
        try:                                # passage checks every setting (and the priming text) first
            text = passage(cfg, vocab, theta, c["length"], c["seed"], c["temperature"], c["top_p"],
                           c["prime"] or "\n")
        except ValueError as err:
            shown = html.escape(str(err), quote=False)
            message.value = f"<span style='color:#b00'>{shown} The passage below is the last one written.</span>"
            return
        message.value = ""
        output.clear_output(wait=True)
        with output:
            print(c["prime"] + text)

    for w in controls.values():
        w.observe(write, names="value")
    heading = widgets.HTML(f"<h3 style='margin:0.2em 0'>{title}</h3>"
                           "<p style='margin:0'>Move a slider or type a priming text: the passage is drawn "
                           "again from the model.</p>")
    panel = widgets.VBox([heading, *controls.values(), message, output],
                         layout=widgets.Layout(border="1px solid #bbb", padding="8px", max_width="52em"))
    panel.controls, panel.message, panel.output = controls, message, output
    panel.add_class("char-rnn-panel")
    write()
    return panel
