import Foundation
import Testing
@testable import ToomTransfer

/// The record of a partial file under a crash at any instant: a commit that was torn part
/// way (a kill or a power cut during its write) reads as the record before it, the one it
/// was writing, or no record, never one that claims bytes that were not on disk.
@Suite struct PartialRecordTests {
    static let identity = FileIdentity(bytes: Array(repeating: 1, count: 32))

    static func record(_ generation: UInt64, durable: UInt64) -> PartialRecord {
        PartialRecord(generation: generation, fileBytes: 10 << 20, identity: identity, durable: durable)
    }

    /// A record file's bytes with `records` in their slots.
    static func file(_ records: [PartialRecord]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: PartialRecord.fileSize)
        for record in records { place(record.encoded, at: record.slotOffset, in: &bytes) }
        return bytes
    }

    static func place(_ slot: [UInt8], at offset: UInt64, in bytes: inout [UInt8]) {
        bytes.replaceSubrange(Int(offset)..<(Int(offset) + slot.count), with: slot)
    }

    @Test func aRecordReadsBackAsWritten() {
        let record = Self.record(7, durable: 123_456)
        #expect(PartialRecord(slot: record.encoded) == record)
        #expect(PartialRecord.latest(in: Self.file([Self.record(6, durable: 100), record])) == record)
        #expect(PartialRecord.latest(in: Self.file([])) == nil)
    }

    /// Generation 3 being written over generation 1's slot, generation 2 in the other: torn
    /// after any byte, with the rest of the slot still generation 1's, zeros (a truncated
    /// file), or anything else, it reads as generation 2 until the write is whole.
    @Test func aCommitTornAtAnyByteReadsAsTheOldRecordOrTheNew() {
        let (first, old, new) = (Self.record(1, durable: 1 << 20), Self.record(2, durable: 4 << 20),
                                 Self.record(3, durable: 7 << 20))
        #expect(new.slotOffset == first.slotOffset && new.slotOffset != old.slotOffset)
        let written = new.encoded
        for rest in [first.encoded, [UInt8](repeating: 0, count: PartialRecord.size),
                     [UInt8](repeating: 0xFF, count: PartialRecord.size)] {
            for torn in 0...PartialRecord.size {
                var bytes = Self.file([old])
                Self.place(Array(written[..<torn]) + rest[torn...], at: new.slotOffset, in: &bytes)
                let read = PartialRecord.latest(in: bytes)
                #expect(read == (torn == PartialRecord.size ? new : old), "torn after \(torn) bytes")
            }
        }
    }

    /// The first commit after a fresh start (the file emptied), torn anywhere, even with
    /// the file cut short there: no record, or the new one.
    @Test func aFirstCommitTornAtAnyByteIsNoRecordOrTheNew() {
        let new = Self.record(1, durable: 3 << 20)
        let written = new.encoded
        for torn in 0...PartialRecord.size {
            var bytes = [UInt8](repeating: 0, count: Int(new.slotOffset))
            bytes += written[..<torn]
            #expect(PartialRecord.latest(in: bytes) == (torn == PartialRecord.size ? new : nil), "torn after \(torn) bytes")
        }
    }

    /// Any one byte of the newest slot damaged: the other slot's record, never a changed one.
    @Test func aDamagedNewestSlotFallsBackToTheOther() {
        let (old, new) = (Self.record(4, durable: 2 << 20), Self.record(5, durable: 5 << 20))
        for index in 0..<PartialRecord.size {
            var bytes = Self.file([old, new])
            bytes[Int(new.slotOffset) + index] ^= 0x20
            #expect(PartialRecord.latest(in: bytes) == old, "byte \(index)")
        }
    }

    /// On disk: commits alternate between the slots, the partial file resumes from the
    /// newest intact one, and a torn newest one leaves the one before.
    @Test func aTornRecordOnDiskResumesFromTheOneBefore() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("toom-record-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.path + "/"
        do {
            let (partial, from) = try PartialFile.openOrCreate(directory: path, saveAs: "f", size: 10_000, identity: Self.identity)
            #expect(from == 0)
            try [UInt8](repeating: 5, count: 7000).withUnsafeBytes { try partial.data.write($0, at: 0) }
            try partial.commit(durable: 4000)
            try partial.commit(durable: 7000)
        }
        let recordPath = path + ".f.part-record"
        #expect(try PartialFile.openOrCreate(directory: path, saveAs: "f", size: 10_000, identity: Self.identity).resumeFrom == 7000)
        // Generation 2 went to the first slot: tear it after 30 bytes.
        let handle = try #require(FileHandle(forUpdatingAtPath: recordPath))
        try handle.seek(toOffset: PartialRecord.slotOffsets[0] + 30)
        handle.write(Data(repeating: 0, count: PartialRecord.size - 30))
        try handle.close()
        do {
            let (partial, from) = try PartialFile.openOrCreate(directory: path, saveAs: "f", size: 10_000, identity: Self.identity)
            #expect(from == 4000)
            // Resumed, the next commit counts on from the record it read, into the torn slot.
            try [UInt8](repeating: 5, count: 4000).withUnsafeBytes { try partial.data.write($0, at: 4000) }
            try partial.commit(durable: 8000)
        }
        #expect(try PartialFile.openOrCreate(directory: path, saveAs: "f", size: 10_000, identity: Self.identity).resumeFrom == 8000)
    }
}
