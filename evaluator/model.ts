// The decoder-only transformer every candidate trains in. Everything here is fixed; only the
// attention block (the program's EVOLVE-BLOCK) varies: token + position embeddings, N blocks of
// LayerNorm → attention → out-proj → residual, LayerNorm → GELU FFN (4×) → residual, final
// LayerNorm, head tied to the token embedding.
import * as tf from '@tensorflow/tfjs';
import type { AttentionFn, Tensor, Tf } from './attention-context';
import { ParamStore, attentionContext, causalMask } from './attention-runtime';

export interface ModelConfig {
  vocabSize: number;
  /** Maximum sequence length (size of the position embedding). */
  seqLen: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  dropout: number;
}

export interface ParamCounts {
  total: number;
  /** Everything but the token and position embeddings (Kaplan et al.'s N). */
  nonEmbedding: number;
  /** Parameters the attention blocks created, all layers together. */
  attention: number;
}

const EMBEDDING_PARAMS = new Set(['tok_emb', 'pos_emb']);
const GELU_C = Math.sqrt(2 / Math.PI);

export class TransformerLM {
  readonly store: ParamStore;
  private readonly masks = new Map<number, Tensor>();
  private dropoutCalls = 0;

  /**
   * @param gatherEmbedding look tokens up with `gather` (needs its gradient, missing on wasm);
   *   otherwise with oneHot(ids) · E, which trains on every backend.
   */
  constructor(
    readonly cfg: ModelConfig,
    private readonly attention: AttentionFn,
    seed: number,
    private readonly gatherEmbedding: boolean,
    /** The tf namespace for matMul and for the blocks (see fast-matmul.ts). */
    private readonly ops: Tf = tf as unknown as Tf,
  ) {
    if (cfg.dModel % cfg.nHeads !== 0) throw new Error(`d_model ${cfg.dModel} is not divisible by ${cfg.nHeads} heads`);
    this.store = new ParamStore(seed);
    this.createFixedParams();
    // Run the blocks once so every parameter they create exists before training starts.
    tf.tidy(() => {
      this.forward(tf.zeros([1, cfg.seqLen], 'int32') as tf.Tensor2D, false, 0);
    });
  }

  private createFixedParams(): void {
    const { vocabSize: V, seqLen: T, dModel: D, nLayers: L } = this.cfg;
    const p = (name: string, shape: number[], init: Parameters<ParamStore['get']>[2]) => this.store.get(name, shape, init);
    const residualStd = 0.02 / Math.sqrt(2 * L); // GPT-2: scale residual projections with depth
    p('tok_emb', [V, D], { normal: 0.02 });
    p('pos_emb', [T, D], { normal: 0.02 });
    for (let l = 0; l < L; l++) {
      p(`L${l}.ln1.g`, [D], 'ones');
      p(`L${l}.ln1.b`, [D], 'zeros');
      p(`L${l}.attn_out.W`, [D, D], { normal: residualStd });
      p(`L${l}.attn_out.b`, [D], 'zeros');
      p(`L${l}.ln2.g`, [D], 'ones');
      p(`L${l}.ln2.b`, [D], 'zeros');
      p(`L${l}.ffn.W1`, [D, 4 * D], { normal: 0.02 });
      p(`L${l}.ffn.b1`, [4 * D], 'zeros');
      p(`L${l}.ffn.W2`, [4 * D, D], { normal: residualStd });
      p(`L${l}.ffn.b2`, [D], 'zeros');
    }
    p('lnf.g', [D], 'ones');
    p('lnf.b', [D], 'zeros');
  }

  private w(name: string): tf.Variable {
    const v = this.store.vars.get(name);
    if (!v) throw new Error(`missing parameter ${name}`);
    return v;
  }

  private mask(T: number): Tensor {
    let m = this.masks.get(T);
    if (!m) {
      m = tf.keep(causalMask(T));
      this.masks.set(T, m);
    }
    return m;
  }

  private layerNorm(x: Tensor, name: string): Tensor {
    const { mean, variance } = tf.moments(x, -1, true); // (…, 1) each
    const xhat = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
    return tf.add(tf.mul(xhat, this.w(`${name}.g`)), this.w(`${name}.b`));
  }

  private gelu(x: Tensor): Tensor {
    // tanh approximation (as in GPT-2): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), GELU_C);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  }

  private dropout(x: Tensor, training: boolean, seed: number): Tensor {
    if (!training || this.cfg.dropout <= 0) return x;
    // A distinct, reproducible seed per call site and step keeps resumed runs bit-identical.
    return tf.dropout(x, this.cfg.dropout, undefined, seed * 64 + this.dropoutCalls++);
  }

  private embed(ids: tf.Tensor2D): Tensor {
    const [B, T] = ids.shape;
    const { vocabSize: V, dModel: D } = this.cfg;
    const flat = tf.reshape(ids, [B * T]); // (B·T)
    const tok = this.gatherEmbedding
      ? tf.gather(this.w('tok_emb'), flat) // (B·T, D)
      : this.ops.matMul(tf.oneHot(flat, V), this.w('tok_emb')); // (B·T, V) · (V, D) → (B·T, D)
    const pos = tf.slice(this.w('pos_emb'), [0, 0], [T, D]); // (T, D)
    return tf.add(tf.reshape(tok, [B, T, D]), pos); // (B, T, D)
  }

  /**
   * Logits for next-token prediction.
   * @param ids (B, T) int32, T ≤ cfg.seqLen
   * @param stepSeed seeds dropout for this step (ignored when not training)
   * @returns (B·T, V)
   */
  forward(ids: tf.Tensor2D, training: boolean, stepSeed: number): Tensor {
    const [B, T] = ids.shape;
    const { dModel: D, nLayers: L, nHeads: H } = this.cfg;
    this.dropoutCalls = 0;
    const mask = this.mask(T);
    let x = this.dropout(this.embed(ids), training, stepSeed); // (B, T, D)
    for (let l = 0; l < L; l++) {
      const ctx = attentionContext(this.store, `L${l}.attn`, { dModel: D, nHeads: H, seqLen: T }, mask);
      const a = this.attention(this.ops, ctx, this.layerNorm(x, `L${l}.ln1`)); // (B, T, D)
      const proj = tf.add(this.ops.matMul(tf.reshape(a, [B * T, D]), this.w(`L${l}.attn_out.W`)), this.w(`L${l}.attn_out.b`)); // (B·T, D)
      x = tf.add(x, this.dropout(tf.reshape(proj, [B, T, D]), training, stepSeed)); // (B, T, D)
      const h = tf.reshape(this.layerNorm(x, `L${l}.ln2`), [B * T, D]); // (B·T, D)
      const f1 = this.gelu(tf.add(this.ops.matMul(h, this.w(`L${l}.ffn.W1`)), this.w(`L${l}.ffn.b1`))); // (B·T, 4D)
      const f2 = tf.add(this.ops.matMul(f1, this.w(`L${l}.ffn.W2`)), this.w(`L${l}.ffn.b2`)); // (B·T, D)
      x = tf.add(x, this.dropout(tf.reshape(f2, [B, T, D]), training, stepSeed)); // (B, T, D)
    }
    const hf = tf.reshape(this.layerNorm(x, 'lnf'), [B * T, D]); // (B·T, D)
    return this.ops.matMul(hf, this.w('tok_emb'), false, true); // tied head: (B·T, D) · (V, D)ᵀ → (B·T, V)
  }

  /** Mean next-token cross-entropy in nats. ids, targets: (B, T) int32. */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, training: boolean, stepSeed: number): tf.Scalar {
    const logits = this.forward(ids, training, stepSeed); // (B·T, V)
    const logp = tf.logSoftmax(logits); // (B·T, V)
    const flat = tf.reshape(targets, [-1]) as tf.Tensor1D; // (B·T)
    const picked = this.gatherEmbedding
      ? tf.gather(logp, tf.expandDims(flat, 1), 1, 1) // (B·T, 1)
      : tf.sum(tf.mul(logp, tf.oneHot(flat, this.cfg.vocabSize)), -1); // (B·T)
    return tf.neg(tf.mean(picked)) as tf.Scalar;
  }

  paramCounts(): ParamCounts {
    return {
      total: this.store.count(),
      nonEmbedding: this.store.count((n) => !EMBEDDING_PARAMS.has(n)),
      attention: this.store.count((n) => /^L\d+\.attn\./.test(n)),
    };
  }

  /** Trainable variables in a fixed order (sorted by name): the order of checkpoints. */
  variables(): [string, tf.Variable][] {
    return [...this.store.vars.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  dispose(): void {
    this.store.dispose();
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
  }
}
