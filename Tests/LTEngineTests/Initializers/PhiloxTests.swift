import Testing
import LTEngine

extension InitializerTests {
    @Suite struct Philox {
        /// Random123's `kat_vectors`, the three `philox4x32 10` lines: counter (4 words), key (2 words), expected.
        static let knownAnswers: [(counter: [UInt32], key: [UInt32], expected: [UInt32])] = [
            ([0x0000_0000, 0x0000_0000, 0x0000_0000, 0x0000_0000], [0x0000_0000, 0x0000_0000],
             [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8]),
            ([0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], [0xFFFF_FFFF, 0xFFFF_FFFF],
             [0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD]),
            ([0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344], [0xA409_3822, 0x299F_31D0],
             [0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1]),
        ]

        @Test(arguments: 0..<3)
        func random123KnownAnswerVectors(index: Int) {
            let vector = Self.knownAnswers[index]
            let counter = PhiloxCounter(vector.counter[0], vector.counter[1], vector.counter[2], vector.counter[3])
            let key = PhiloxKey(vector.key[0], vector.key[1])
            #expect(Philox4x32_10.block(counter: counter, key: key).words == vector.expected)
        }

        @Test func nextReturnsTheBlockForTheCurrentCounterThenAdvances() {
            var stream = Philox4x32_10(key: PhiloxKey(0xA409_3822, 0x299F_31D0),
                                       counter: PhiloxCounter(0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0x0370_7344))
            let first = stream.next()
            #expect(first == Philox4x32_10.block(counter: PhiloxCounter(0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0x0370_7344),
                                                 key: stream.key))
            #expect(stream.counter == PhiloxCounter(0, 0, 0, 0x0370_7345))
            let second = stream.next()
            #expect(second == Philox4x32_10.block(counter: PhiloxCounter(0, 0, 0, 0x0370_7345), key: stream.key))
            #expect(second != first)
            #expect(stream.counter == PhiloxCounter(1, 0, 0, 0x0370_7345))
        }

        @Test func counterIncrementCarriesThroughAll128Bits() {
            #expect(PhiloxCounter(5, 0, 0, 0).incremented() == PhiloxCounter(6, 0, 0, 0))
            #expect(PhiloxCounter(0xFFFF_FFFF, 7, 0, 0).incremented() == PhiloxCounter(0, 8, 0, 0))
            #expect(PhiloxCounter(0xFFFF_FFFF, 0xFFFF_FFFF, 9, 0).incremented() == PhiloxCounter(0, 0, 10, 0))
            #expect(PhiloxCounter(0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 1).incremented() == PhiloxCounter(0, 0, 0, 2))
            #expect(PhiloxCounter(0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF).incremented()
                    == PhiloxCounter(0, 0, 0, 0))
        }

        @Test func uint64FormsPutTheLowWordFirst() {
            let key = PhiloxKey(u64: 0xFF7D_B268_2C8A_64FD)
            #expect(key == PhiloxKey(0x2C8A_64FD, 0xFF7D_B268))
            #expect(key.u64 == 0xFF7D_B268_2C8A_64FD)
            let counter = PhiloxCounter(u64: 0x0000_0002_0000_0001, 0x3676_09EB_8896_7F85)
            #expect(counter == PhiloxCounter(1, 2, 0x8896_7F85, 0x3676_09EB))
            #expect(counter.u64.low == 0x0000_0002_0000_0001)
            #expect(counter.u64.high == 0x3676_09EB_8896_7F85)
        }
    }
}
