/// AlphaEdit's null space of one layer's keys (ALGORITHM.md §3.2; jianghoucheng/AlphaEdit
/// experiments/evaluate.py get_project): the eigenvectors of C_l = E[kkᵀ] whose eigenvalue is below a
/// threshold, Û [F, m] with orthonormal columns. The projector P_l = Û Ûᵀ is never formed: an update
/// works in Û's coordinates (a = Ûᵀk [m], then Û z [F]), which costs F·m instead of F² per vector and
/// makes every projected update exactly orthogonal to the preserved span (the eigenvectors above the
/// threshold), where the keys of the statistics corpus live.
///
/// The reference takes the SVD of C (its singular values are the eigenvalues, C being symmetric positive
/// semi-definite) and keeps the singular vectors with value < `nullspace_threshold` = 2e-2, an absolute
/// threshold on the mean second moment, computed once from the unedited model. Here LAPACK's symmetric
/// eigensolver (dsyevd) in f64 does the same.
public struct NullSpace: Sendable, Equatable {
    public let layer: Int
    /// Key width F.
    public let dim: Int
    /// Eigenvalues below this span the null space.
    public let threshold: Double
    /// All eigenvalues of C, ascending [F].
    public let eigenvalues: [Double]
    /// Û as m basis vectors of F values each, one after another (row i = eigenvector i) [m, F].
    public let basis: [Double]

    /// m, the null space's dimension.
    public var rank: Int { dim == 0 ? 0 : basis.count / dim }

    public init(layer: Int, dim: Int, threshold: Double, eigenvalues: [Double], basis: [Double]) {
        precondition(eigenvalues.count == dim && basis.count % max(1, dim) == 0)
        self.layer = layer; self.dim = dim; self.threshold = threshold
        self.eigenvalues = eigenvalues; self.basis = basis
    }

    /// The null space of a packed moment (C's upper triangle row by row, `KeyCovariance`'s layout).
    /// - Parameter packed: dim·(dim+1)/2 values
    public static func compute(layer: Int, packed: [Double], threshold: Double) throws -> NullSpace {
        let n = KeyCovariance.triangleSide(packed.count)
        precondition(n * (n + 1) / 2 == packed.count, "the packed moment is not a triangle")
        var a = [Double](repeating: 0, count: n * n)
        var o = 0
        for i in 0..<n {
            for j in i..<n { a[i * n + j] = packed[o]; a[j * n + i] = packed[o]; o += 1 }
        }
        var w = [Double](repeating: 0, count: n)
        let info = a.withUnsafeMutableBufferPointer { ap in
            w.withUnsafeMutableBufferPointer { BLAS.dsyevd(n: n, a: ap.baseAddress!, w: $0.baseAddress!) }
        }
        guard info == 0 else { throw WilKEError.eigenDecomposition(layer: layer, info: info) }
        // Ascending eigenvalues: the null space is a prefix; eigenvector j is a[j·n ..< (j+1)·n].
        let m = w.firstIndex { !($0 < threshold) } ?? n
        return NullSpace(layer: layer, dim: n, threshold: threshold, eigenvalues: w, basis: Array(a[0 ..< m * n]))
    }

    /// The energy rule's threshold: the eigenvalue just above the longest ascending prefix whose sum is
    /// at most `fraction` of the trace, so `compute(threshold:)` keeps exactly that prefix (the
    /// largest eigenvalue plus one when the prefix is everything). - Parameter eigenvalues: ascending [F]
    public static func energyThreshold(eigenvalues: [Double], fraction: Double) -> Double {
        let trace = eigenvalues.reduce(0) { $0 + max(0, $1) }
        var sum = 0.0
        for w in eigenvalues {
            sum += max(0, w)
            if sum > fraction * trace { return w }
        }
        return (eigenvalues.last ?? 0) + 1
    }

    /// The null space below a smaller `threshold`: a prefix of this basis (same eigen-decomposition).
    public func truncated(below threshold: Double) -> NullSpace {
        precondition(threshold <= self.threshold)
        let m = eigenvalues.firstIndex { !($0 < threshold) } ?? dim
        return NullSpace(layer: layer, dim: dim, threshold: threshold, eigenvalues: eigenvalues, basis: Array(basis[0 ..< m * dim]))
    }

    /// The fraction of trace(C) that lies in the null space (what an update in it may still disturb,
    /// on average over the statistics corpus's keys).
    public var energyFraction: Double {
        let trace = eigenvalues.reduce(0) { $0 + max(0, $1) }
        return trace > 0 ? eigenvalues.prefix(rank).reduce(0) { $0 + max(0, $1) } / trace : 0
    }

    /// a = Ûᵀk [m]: the key's coordinates in the null space. - Parameter k: [F]
    public func coordinates(_ k: [Float]) -> [Double] {
        precondition(k.count == dim)
        return (0..<rank).map { i in
            var s = 0.0
            let row = i * dim
            for j in 0..<dim { s += basis[row + j] * Double(k[j]) }
            return s
        }
    }

    /// Û z [F]: a vector of the null space from its coordinates. - Parameter z: [m]
    public func vector(_ z: [Double]) -> [Double] {
        precondition(z.count == rank)
        var out = [Double](repeating: 0, count: dim)
        for i in 0..<rank where z[i] != 0 {
            let row = i * dim, zi = z[i]
            for j in 0..<dim { out[j] += zi * basis[row + j] }
        }
        return out
    }

    /// P k = Û Ûᵀ k [F]. - Parameter k: [F]
    public func project(_ k: [Float]) -> [Double] { vector(coordinates(k)) }
}
