"""Reviews the explain snapshots against the real Keras traces (Tests/LTEngineTests/Golden).

For each snapshot: the header's position, the rows with their x and y, the weights before the step, the batch loss,
the gradients (within 1e-5 of Keras's float64 gradient, which the trace records) and the result w, b: Keras's
float32 values, exactly. Also redoes the first line of each optimizer's update with numpy float32, by Keras's
formula, from the values the snapshot shows. Run: python3 review_explain.py (from this directory). Needs numpy.
"""
import json, os, re, sys
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
golden_dir = os.path.join(here, '..', '..', 'LTEngineTests', 'Golden')
f32 = np.float32
cases = [  # snapshot, golden run, iteration
    ('explain-5.txt', 'seed_e4_b4', 5),
    ('explain-sgd-partial-batch.txt', 'sgd_b5_e10', 6),
    ('explain-sgd-momentum.txt', 'momentum_b4_e5', 2),
    ('explain-sgd-nesterov.txt', 'nesterov_b5_e5', 9),
    ('explain-rmsprop-centered-momentum.txt', 'rmsprop_centered_momentum_b4_e3', 4),
    ('explain-adam.txt', 'adam_b4_e20', 3),
    ('explain-adamw.txt', 'adamw_b5_e10', 4),
    ('explain-adagrad.txt', 'adagrad_b4_e20', 2),
]
failures, checks = [], 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)


def s(v):
    """numpy's float32 text, which is the shortest round-trip decimal, as ltd writes it."""
    return str(f32(v))


def value_after(text, name):
    """The value the last working line of `name` ends with."""
    block = text.rsplit('     %s = ' % name, 1)[1]
    return float([l for l in block.splitlines() if re.match(r'^\s+= \S+$', l)][0].split('= ')[1])


for snapshot, run, iteration in cases:
    text = open(os.path.join(here, snapshot)).read()
    trace = [json.loads(l) for l in open(os.path.join(golden_dir, run + '.trace.ndjson'))]
    step = [t for t in trace if t['type'] == 'step'][iteration - 1]
    where = '%s (%s, iteration %d)' % (snapshot, run, iteration)
    check('iteration %d: epoch %d, step %d of' % (iteration, step['epoch'], step['step']) in text, where + ': position')
    check('batch of %d, in feed order): %s' % (step['batch_size'], ', '.join(map(str, step['indices']))) in text, where + ': rows')
    table = [l.split() for l in text.splitlines() if re.match(r'^\s+\d+\s+\d+\.\d', l)]
    check([int(r[0]) for r in table] == step['indices'], where + ': table rows')
    check([f32(r[1]) for r in table] == [f32(v) for v in step['x']], where + ': x')
    check([f32(r[2]) for r in table] == [f32(v) for v in step['y']], where + ': y')
    check('w = %s, b = %s; scale' % (s(step['w_before']), s(step['b_before'])) in text, where + ': weights before')
    check('batch_loss = squared_error_sum / n' in text and text.split('batch_loss = squared_error_sum / n')[1].splitlines()[0].endswith('= ' + s(step['batch_mse_f32'])), where + ': batch loss')
    for g in ('w', 'b'):
        shown = float(re.search(r'grad_%s = .* = (\S+)\n' % g, text).group(1))
        check(abs(shown - step['grad_%s_f64' % g]) <= 1e-5 * max(1, abs(step['grad_%s_f64' % g])), where + ': grad_' + g)
    check('Result: w = %s, b = %s ' % (s(step['w_after']), s(step['b_after'])) in text, where + ': result')
    check(f32(value_after(text, 'w')) == f32(step['w_after']) and f32(value_after(text, 'b')) == f32(step['b_after']), where + ': last lines')

# The first optimizer line of each snapshot, redone in numpy float32 by Keras's formula from the shown values.
def shown(text, label):
    return f32(re.search(re.escape(label) + r' (\S+?)[,\n]', text).group(1))

t = open(os.path.join(here, 'explain-adam.txt')).read()
g, m0, v0 = shown(t, 'grad_w'), shown(t, 'kernel.momentum'), shown(t, 'kernel.velocity')
m = m0 + (g - m0) * f32(1 - 0.9)
v = v0 + (g * g - v0) * f32(1 - 0.999)
alpha = f32(0.1) * np.sqrt(f32(1) - f32(np.float64(f32(0.999)) ** 3)) / (f32(1) - f32(np.float64(f32(0.9)) ** 3))
w = shown(t, 'before: w') - (m * alpha) / (np.sqrt(v) + f32(1e-7))
check(m == f32(value_after(t, 'kernel.momentum')) and v == f32(value_after(t, 'kernel.velocity')), 'adam: m, v redone')
check(w == f32(value_after(t, 'w')), 'adam: w redone %r' % w)

t = open(os.path.join(here, 'explain-sgd-momentum.txt')).read()
g, m0 = shown(t, 'grad_w'), shown(t, 'kernel.momentum')
m = m0 * f32(0.9) - g * f32(0.001)
check(m == f32(value_after(t, 'kernel.momentum')), 'sgd momentum: momentum redone')
check(shown(t, 'before: w') + m == f32(value_after(t, 'w')), 'sgd momentum: w redone')

t = open(os.path.join(here, 'explain-adagrad.txt')).read()
g, a0 = shown(t, 'grad_w'), shown(t, 'kernel.accumulator')
a = a0 + g * g
check(a == f32(value_after(t, 'kernel.accumulator')), 'adagrad: accumulator redone')
check(shown(t, 'before: w') - (f32(0.5) * g) * (f32(1) / np.sqrt(a + f32(1e-7))) == f32(value_after(t, 'w')), 'adagrad: w redone')

print('FAILURES:\n  ' + '\n  '.join(failures) if failures else 'ALL OK', checks, 'checks')
sys.exit(1 if failures else 0)
