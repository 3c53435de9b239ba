import Testing

/// All tests of Sources/LTEngine/Initializers live under this suite, so `swift test --filter Initializer` runs them.
@Suite enum InitializerTests {}
