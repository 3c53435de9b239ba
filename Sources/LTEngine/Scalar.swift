#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The two precisions the engine computes in. `Float` is Keras's float32 (bit-exact); `Double` is float64 "for study".
///
/// Every operation on an `EngineScalar` is one IEEE operation rounded to the scalar's precision; the engine relies
/// on Swift never contracting `a * b + c` into a fused multiply-add unless asked (`addingProduct`).
protocol EngineScalar: BinaryFloatingPoint, SIMDScalar, Sendable, Codable, UpdateArithmetic
where Self.RawSignificand: FixedWidthInteger, Scalar == Self {
    /// `pow(base, exponent)` as TensorFlow's float32 `Pow` computes it: in double, then rounded (KERAS.md §2, Adam).
    static func kerasPow(_ base: Self, _ exponent: Self) -> Self
    /// The scalar's own bit pattern, zero-extended: exact, and NaN-safe for checkpoints.
    var bits64: UInt64 { get }
    init(bits64: UInt64)
    static var precision: Precision { get }
}

extension EngineScalar {
    /// A user's number as Keras holds it: rounded to float32 (Keras's floatx), then widened to this precision.
    /// float64 mode therefore trains on exactly the numbers Keras sees, and differs only by its arithmetic.
    @inline(__always) static func keras(_ value: Double) -> Self { Self(Float(value)) }
}

extension Float: EngineScalar {
    static func kerasPow(_ base: Float, _ exponent: Float) -> Float { Float(pow(Double(base), Double(exponent))) }
    var bits64: UInt64 { UInt64(bitPattern) }
    init(bits64: UInt64) { self.init(bitPattern: UInt32(truncatingIfNeeded: bits64)) }
    static var precision: Precision { .float32 }
}

extension Double: EngineScalar {
    static func kerasPow(_ base: Double, _ exponent: Double) -> Double { pow(base, exponent) }
    var bits64: UInt64 { bitPattern }
    init(bits64: UInt64) { self.init(bitPattern: bits64) }
    static var precision: Precision { .float64 }
}
