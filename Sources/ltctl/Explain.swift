import ArgumentParser

extension LTCtl {
    struct Explain: ParsableCommand {
        func run() throws {}
    }
}
