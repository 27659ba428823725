import Formats
import Foundation
import Testing
@testable import WilKE

/// The method as a value: which algorithm a method, its settings and a fixed layer mean, the layers it
/// needs statistics for, and the records and stored settings that must not change without the options.
@Suite struct EditAlgorithmTests {
    static let hp = EditHyperparameters.defaults(layers: 30, family: .llama)

    @Test func methodsMapToTheirAlgorithms() throws {
        var hp = Self.hp
        hp.scanTop = 3
        #expect(try EditAlgorithm(method: .rome, hyperparameters: hp) == .rome(layer: 5))
        #expect(try EditAlgorithm(method: .rome, hyperparameters: hp, layer: 9).layers == [9])
        #expect(try EditAlgorithm(method: .wilke, hyperparameters: hp) == .wilke(layers: Array(0...14), scan: .fast, top: 3, margin: 1.09))
        // WilKE's roll-back at its earlier choice is ROME at that layer, recorded as wilke.
        let back = try EditAlgorithm(method: .wilke, hyperparameters: hp, layer: 3)
        #expect(back == .rome(layer: 3, recordedAs: .wilke) && back.method == .wilke && back.layers == [3])
        let memit = try EditAlgorithm(method: .memit, hyperparameters: hp)
        #expect(memit == .memit(layers: [3, 4, 5, 6, 7]) && memit.anchorLayers == [7] && memit.usesMemitTemplates)
        #expect(try EditAlgorithm(method: .memit, hyperparameters: hp, layer: 7) == memit)
        #expect(throws: WilKEError.self) { try EditAlgorithm(method: .memit, hyperparameters: hp, layer: 5) }
        #expect(throws: WilKEError.invalidLayer(40)) { try EditAlgorithm(method: .rome, hyperparameters: hp, layer: 40).validate(nLayer: 30) }
    }

    /// Without the options the patch record is exactly the old one (so patch bytes do not change); with
    /// them it names the method's options and thresholds.
    @Test func recordsNameTheOptionsOnlyWhenUsed() {
        let plain = Self.hp.record
        #expect(Set(plain.keys) == ["v_num_grad_steps", "v_lr", "v_weight_decay", "clamp_norm_factor", "kl_factor", "early_stop_loss",
                                    "mom2_adjustment", "averaged_keys", "context_template_length_params", "template_seed"])
        var hp = Self.hp
        hp.preserve = .nullSpace
        hp.normAnchor = true
        hp.laReference = .original
        let r = hp.record
        #expect(r["preserve"] == "null-space" && r["null_space_threshold"] == "0.02" && r["null_space_l2"] == "10.0")
        #expect(r["norm_anchor"] == "nas" && r["anchor_references"] == "8" && r["la_reference"] == "original")
        #expect(hp.memitRecord["mom2_update_weight"] == nil && Self.hp.memitRecord["mom2_update_weight"] == "15000.0")
        #expect(hp.describe(.memit) == "alphaedit (layers 3-7) + null-space (threshold 0.02, L2 10.0) + norm anchor (8 reference facts)"
                + " + LA against the original ‖W‖")
        #expect(Self.hp.describe(.wilke) == "wilke (fast scan of 0-14, top 3 within 1.09x)")
    }

    /// Settings stored before the options existed (an evaluation's config.json) decode with them off.
    @Test func oldSettingsDecodeWithTheOptionsOff() throws {
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(Self.hp)) as? [String: Any])
        for k in ["preserve", "nullSpaceThreshold", "nullSpaceL2", "normAnchor", "anchorReferences", "laReference"] {
            #expect(json.removeValue(forKey: k) != nil, "\(k)")
        }
        let old = try JSONDecoder().decode(EditHyperparameters.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old == Self.hp)
    }

    /// A fast-scan setting stored before the margin existed optimized all of its top K.
    @Test func oldFastScanSettingsDecodeWithoutAMargin() throws {
        var hp = Self.hp
        hp.scanTop = 2
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(hp)) as? [String: Any])
        #expect(json.removeValue(forKey: "scanMargin") != nil)
        let old = try JSONDecoder().decode(EditHyperparameters.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.scanMargin == nil && old.scanTop == 2 && old.wilkeRecord["scan_margin"] == nil)
        #expect(hp.wilkeRecord["scan_margin"] == "1.09" && hp.wilkeRecord["scan_top"] == "2")
    }

    /// The fast scan keeps the best estimate and those of the top K within the margin of it, in layer order.
    @Test func marginPicksTheLayersCloseToTheBestEstimate() {
        func e(_ l: Int, _ v: Float) -> LayerEstimate {
            LayerEstimate(layer: l, estimate: v, streamNorm: 1, denominator: 1, weightNorm: 1, gradientNorm: 1, firstOrder: v,
                          gradientL1: 1, m0Norm: 1)
        }
        let est = [e(0, 1.30), e(4, 1.05), e(7, 1.00), e(9, 1.08), e(12, 1.095)]
        #expect(LayerEstimate.top(est, count: 3, margin: 1.09) == [4, 7, 9])
        #expect(LayerEstimate.top(est, count: 2, margin: 1.09) == [4, 7])
        #expect(LayerEstimate.top(est, count: 3, margin: 1.01) == [7])
        #expect(LayerEstimate.top(est, count: 3, margin: nil) == [4, 7, 9])
        #expect(LayerEstimate.top(est, count: 5, margin: 1.1) == [4, 7, 9, 12])
    }
}
