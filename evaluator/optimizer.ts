// AdamW (decoupled weight decay) with global-norm gradient clipping, written out in tfjs ops so
// its whole state (m, v, step) is visible and can be checkpointed and restored exactly.
import * as tf from '@tensorflow/tfjs';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this value; 0 disables clipping. */
  gradClip: number;
}

export class AdamW {
  /** Number of updates applied so far (the bias-correction exponent). */
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(
    readonly cfg: AdamWConfig,
    private readonly params: [string, tf.Variable][],
  ) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /** Apply one update. `grads` by parameter name; returns the pre-clip global gradient norm (a scalar to read). */
  apply(grads: Record<string, tf.Tensor>, lr: number): tf.Scalar {
    this.step += 1;
    const { beta1, beta2, eps, weightDecay, gradClip } = this.cfg;
    const bc1 = 1 - Math.pow(beta1, this.step);
    const bc2 = 1 - Math.pow(beta2, this.step);
    return tf.tidy(() => {
      const sq = this.params.map(([name]) => tf.sum(tf.square(grads[name])));
      const norm = tf.sqrt(tf.addN(sq)) as tf.Scalar;
      // scale = clip / max(norm, clip): 1 when under the limit, without a device→host read.
      const scale = gradClip > 0 ? tf.div(gradClip, tf.maximum(norm, gradClip)) : tf.scalar(1);
      for (const [name, p] of this.params) {
        const g = tf.mul(grads[name], scale);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        // Decay matrices only; gains, biases and vectors are left alone (as in GPT-2/nanoGPT).
        const decayed = weightDecay > 0 && p.rank >= 2 ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      }
      return tf.keep(norm);
    });
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}
