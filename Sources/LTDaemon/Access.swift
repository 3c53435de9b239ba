#if canImport(Glibc)
import Glibc
#endif
import LTProtocol

// Who owns a job and who may control it. Names are per owner: a job is keyed by its owner's uid and its short
// name, and shown as `OWNER/NAME`. Its owner and root may control it, and so may members of the admin group (a
// teacher, as CUPS's lpadmin). Every control action is logged (JobJournal.swift).

/// A job's identity in the daemon: its owner's uid and its short name.
struct JobKey: Hashable, Sendable {
    let owner: UInt32
    let name: String
}

extension JobRecord {
    var key: JobKey { JobKey(owner: owner, name: name) }
    /// `OWNER/NAME`, as status, list and the journal show it.
    var fullName: String { JobName.full(owner: ownerName, name: name) }

    /// The owner's login name, or the uid's digits when the user database has none (so `1234/job1` still names it).
    static func ownerName(of uid: UInt32) -> String { PeerCredentials.userName(of: uid) ?? String(uid) }
}

/// The owners and roles the daemon grants control by.
struct AccessPolicy: Sendable {
    /// Members of this group may control every job (`ltd --admin-group`).
    let adminGroup: String

    /// Why a caller may control a job.
    enum Role: String {
        case owner, root, admin
    }

    /// The caller's role over a job owned by `owner`, or nil when it may not control it. Group membership is the
    /// kernel's (SO_PEERGROUPS and the primary gid, as the caller's process had them when it connected), so it
    /// reads no user database for owners and root.
    func role(of connection: Connection, over owner: UInt32) -> Role? {
        if connection.peerUID == owner { return .owner }
        return roleOverEveryone(of: connection)
    }

    /// `.root` or `.admin` when the caller may control every user's jobs; else nil.
    func roleOverEveryone(of connection: Connection) -> Role? {
        if connection.peerUID == 0 { return .root }
        return isAdmin(connection) ? .admin : nil
    }

    /// The caller is a member of the admin group.
    private func isAdmin(_ connection: Connection) -> Bool {
        guard let admins = groupID(adminGroup) else { return false }
        if connection.peer.gid == admins { return true }
        guard let fd = connection.pipe.fileDescriptor else { return false }
        return PeerCredentials.groups(fd: fd).contains(admins)
    }

    /// The gid of `name` in the group database, or nil when there is no such group.
    func groupID(_ name: String) -> gid_t? {
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        return buffer.withUnsafeMutableBufferPointer { storage -> gid_t? in
            var entry = group()
            var found: UnsafeMutablePointer<group>?
            guard let base = storage.baseAddress, getgrnam_r(name, &entry, base, storage.count, &found) == 0,
                  found != nil
            else { return nil }
            return entry.gr_gid
        }
    }
}

extension Server {
    /// Who may control which job, from `ltd --admin-group`.
    var access: AccessPolicy { AccessPolicy(adminGroup: configuration.adminGroup) }
}
