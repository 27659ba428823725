import Formats

// How the engine runs each architecture: one file per architecture in Architectures/ describes it (its
// tensors, its block traits, and its own forward / backward where the shared block does not fit, as
// Gemma 3's does not), after mlx-swift-lm's Models/<Arch>.swift. `Architecture.engine` below is the
// only list of them; docs/ARCHITECTURE.md "How to add a model family" walks through a new one.

/// The traits the shared block (`TransformerModel.sharedBlock`) and the model around it read.
struct ArchitectureTraits: Sendable {
    enum Norm: Sendable { case layerNorm, rmsNorm }
    /// Rotary pairing: none (learned positions), GPT-J's (2i, 2i + 1), or HF rotate-half (i, i + R/2).
    enum Rotary: Sendable { case none, interleaved, rotateHalf }
    /// GELU over the up projection, or a gate (SiLU, GELU-tanh) times the up projection.
    enum MLP: Sendable { case gelu, swiGLU, geGLU }

    var norm: Norm
    var rotary: Rotary
    var mlp: MLP
    /// Attention and MLP read the same normed input and add to the residual together (GPT-J).
    var parallel = false
    /// RMSNorm over each query and key head (over D) before RoPE (Qwen3; Gemma 3 runs its own block).
    var qkNorm = false
    /// A learned position table bounds the sequence length (GPT-2).
    var learnedPositions = false
    /// The embedding output is multiplied by √C (Gemma).
    var scaledEmbeddings = false
    /// The LM head has a bias (GPT-J).
    var headBias = false
}

/// One architecture's description. The defaults are the shared block's forward and backward.
protocol ArchitectureEngine: Sendable {
    var traits: ArchitectureTraits { get }
    /// Layer `l`'s parameters under this architecture's tensor names (canonical GGUF names), shape-checked.
    func layerWeights(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights
    /// The attention window of layer `l` (query position p sees keys p − window + 1 ... p); nil: all.
    func window(layer l: Int, _ cfg: ModelConfig) -> Int?
    /// Forward of block `l`, filling `act` from `act.x` (see `TransformerModel.sharedBlock`).
    func forward(_ m: TransformerModel, _ l: Int, _ act: LayerActivations, _ pack: Packing, _ kv: inout [KVCache],
                 keepAttention: Bool, mlpDelta: ([Float], [Int])?) throws
    /// Whether `backward` is implemented (the ROME / MEMIT path); false refuses `forwardForBackward`.
    var hasBackward: Bool { get }
    /// Whether the blocks of one taped pass may share xn, a, attnOut, hn, key and mlp
    /// (`LayerActivations.sharesScratch`): true when `backward` reads none of them.
    var sharesTapeScratch: Bool { get }
    /// Gradient w.r.t. block `l`'s input ([T, C]) from the gradient w.r.t. its output.
    func backward(_ m: TransformerModel, _ l: Int, _ act: LayerActivations, _ pack: Packing, _ batch: ForwardBatch,
                  dout: FloatBuffer) -> FloatBuffer
}

extension ArchitectureEngine {
    func window(layer l: Int, _ cfg: ModelConfig) -> Int? { nil }

    func forward(_ m: TransformerModel, _ l: Int, _ act: LayerActivations, _ pack: Packing, _ kv: inout [KVCache],
                 keepAttention: Bool, mlpDelta: ([Float], [Int])?) throws {
        try m.sharedBlock(l, act, pack, &kv, keepAttention: keepAttention, mlpDelta: mlpDelta)
    }

    var hasBackward: Bool { true }

    var sharesTapeScratch: Bool { true }

    func backward(_ m: TransformerModel, _ l: Int, _ act: LayerActivations, _ pack: Packing, _ batch: ForwardBatch,
                  dout: FloatBuffer) -> FloatBuffer {
        m.sharedBlockBackward(l, act, pack, batch, dout: dout)
    }
}

extension Architecture {
    /// The registry: one line per architecture, each naming its file's engine.
    var engine: any ArchitectureEngine {
        switch self {
        case .gpt2: return GPT2Engine()
        case .gptj: return GPTJEngine()
        case .llama: return LlamaEngine()
        case .mistral: return MistralEngine()
        case .qwen2: return Qwen2Engine()
        case .qwen3: return Qwen3Engine()
        case .phi3: return Phi3Engine()
        case .gemma3: return Gemma3Engine()
        }
    }
}

extension ModelConfig {
    var engine: any ArchitectureEngine { architecture.engine }
}
