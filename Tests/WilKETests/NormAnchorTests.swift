import Foundation
import Testing
import TestSupport
@testable import WilKE

/// Norm-Anchor Scaling on the tiny fixture models: the value vector the edited layer writes for the
/// subject's key keeps the solved v*'s direction and has the anchor's norm, for ROME and MEMIT.
@Suite struct NormAnchorTests {
    static func norm(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

    @Test(arguments: fixtureArchs) func anchoredROMEWritesTheAnchorNormInTheSolvedDirection(arch: String) throws {
        let fx = try FixtureModel(arch)
        let f = try RomeEditFixtureTests.Fixture(arch, layers: fx.config.nLayer)
        let st = LayerKeyStatistics(solve: try f.solver(f.layer))
        let plain = try fx.model.rankOneUpdate(f.inputs, layer: f.layer, f.hp, statistics: st)
        let vStar = plain.optimization.vStar
        for factor: Float in [0.6, 1.7] {
            let anchor = Float(Self.norm(vStar)) * factor
            let up = try fx.model.rankOneUpdate(f.inputs, layer: f.layer, f.hp, statistics: st, anchor: anchor)
            #expect(up.optimization.delta == plain.optimization.delta && up.u == plain.u)
            // What the edited layer now outputs at k_c: (W + r ûᵀ) k_c = m₀ + r (û·k_c), m₀ = W k_c (+ b).
            let kc = try fx.model.subjectKeys(f.inputs, layer: f.layer).bare
            let hit = zip(kc, up.u).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            let written = zip(up.optimization.m0, up.r).map { $0 + $1 * hit }
            let cos = zip(written, vStar).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / (Self.norm(written) * Self.norm(vStar))
            print("\(arch) ×\(factor): ‖written v*‖ \(Self.norm(written)) vs anchor \(anchor), cos to solved v* \(cos)")
            #expect(abs(Self.norm(written) - Double(anchor)) <= 1e-4 * Double(anchor))
            #expect(cos >= 1 - 1e-6)
            // LA follows the anchored update.
            #expect(abs(up.relativeSize - plain.relativeSize) > 1e-3 * plain.relativeSize)
        }
    }

    /// MEMIT's target z: its MLP part m_L + δ rescaled to the anchor, the rest of h^L unchanged.
    @Test(arguments: MemitFixtureTests.archs) func anchoredMEMITRescalesTheMLPValue(arch: String) throws {
        let run = try MemitFixtureTests.Run(arch)
        let anchor: Float = 3
        let up = try run.fx.model.memitUpdate(run.rome.inputs, layers: run.layers, templateGroups: run.groups, run.hp,
                                              statistics: { _ in LayerKeyStatistics(solve: nil) }, anchor: anchor) { _ in }
        let opt = up.optimization
        let solved = zip(opt.mlpOutput, opt.delta).map(+)
        let written = zip(zip(up.z, opt.m0).map(-), opt.mlpOutput).map(+)  // z − h^L + m_L
        let cos = zip(written, solved).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / (Self.norm(written) * Self.norm(solved))
        #expect(abs(Self.norm(written) - Double(anchor)) <= 1e-4 * Double(anchor))
        #expect(cos >= 1 - 1e-6)
        #expect(opt.mlpOutput != opt.m0)  // the MLP output is a part of h^L, not all of it
    }

    /// The reference's upper-trimmed mean drops the largest ⌊5%⌋.
    @Test func trimmedMeanDropsTheTopFivePercent() {
        #expect(NormAnchor.trimmedMean((1...20).map(Double.init)) == 10)
        #expect(NormAnchor.trimmedMean([4, 2]) == 3)
        #expect(NormAnchor.trimmedMean([]) == nil)
    }

    /// `--la-reference original`: LA(l) and LA_est(l) divide by the given (unedited) ‖W_l‖_F instead of the
    /// current one, and nothing else changes.
    @Test func laReferenceDividesByTheGivenNorm() throws {
        let fx = try FixtureModel("llama")
        let f = try RomeEditFixtureTests.Fixture("llama", layers: fx.config.nLayer)
        let solve = try f.solver(f.layer)
        let current = fx.model.mlpOutputNorm(layer: f.layer)
        let plain = try fx.model.rankOneUpdate(f.inputs, layer: f.layer, f.hp, statistics: LayerKeyStatistics(solve: solve))
        let other = try fx.model.rankOneUpdate(f.inputs, layer: f.layer, f.hp,
                                               statistics: LayerKeyStatistics(solve: solve, weightNorm: 2 * current))
        #expect(other.r == plain.r && other.u == plain.u)
        #expect(abs(other.relativeSize / plain.relativeSize - 0.5) <= 1e-5)
        let shared = try fx.model.sharedScanPass(f.inputs, layers: [f.layer], f.hp)
        let a = try fx.model.layerEstimates(shared, layers: [f.layer], f.hp, statistics: [LayerKeyStatistics(solve: solve)])
        let b = try fx.model.layerEstimates(shared, layers: [f.layer], f.hp,
                                            statistics: [LayerKeyStatistics(solve: solve, weightNorm: 2 * current)])
        #expect(abs(b[0].estimate / a[0].estimate - 0.5) <= 1e-5)
    }
}
