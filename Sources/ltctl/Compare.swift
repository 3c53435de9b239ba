import ArgumentParser

extension LTCtl {
    struct Compare: ParsableCommand {
        func run() throws {}
    }
}
