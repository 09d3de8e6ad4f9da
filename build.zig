//! Builds orch: one fully static executable from the C11 sources under src/, linked
//! against the static archives of Debian's -dev packages (see vendor/manifest).
const std = @import("std");

const libdir = "/usr/lib/x86_64-linux-gnu";
const archives = [_][]const u8{ "raft", "uv_a", "lz4", "msgpackc", "yaml", "z", "zstd", "ssl", "crypto" };

fn collect(b: *std.Build, dir: []const u8, skip: ?[]const u8) []const []const u8 {
    var list: std.ArrayList([]const u8) = .empty;
    var d = std.fs.cwd().openDir(dir, .{ .iterate = true }) catch return &.{};
    defer d.close();
    var walker = d.walk(b.allocator) catch @panic("oom");
    defer walker.deinit();
    while (walker.next() catch null) |e| {
        if (e.kind != .file or !std.mem.endsWith(u8, e.path, ".c")) continue;
        const p = b.fmt("{s}/{s}", .{ dir, e.path });
        if (skip) |s| if (std.mem.eql(u8, p, s)) continue;
        list.append(b.allocator, p) catch @panic("oom");
    }
    std.mem.sort([]const u8, list.items, {}, struct {
        fn lt(_: void, a: []const u8, c: []const u8) bool {
            return std.mem.lessThan(u8, a, c);
        }
    }.lt);
    return list.items;
}

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const werror = b.option(bool, "werror", "treat warnings as errors (CI)") orelse false;
    const sanitize = b.option(bool, "sanitize", "build with the undefined-behaviour sanitizer") orelse false;
    const version = b.option([]const u8, "version", "version string") orelse "0.16.0";

    var flags: std.ArrayList([]const u8) = .empty;
    flags.appendSlice(b.allocator, &.{
        "-std=c11",                "-D_GNU_SOURCE",     "-Wall",                "-Wextra",
        "-Wshadow",                "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wformat=2",
        "-Wvla",                   "-Wno-unused-parameter", "-Wpointer-arith",  "-Wundef",
        "-Wcast-qual",             "-Wimplicit-fallthrough", "-Isrc",
        b.fmt("-DORCH_VERSION=\"{s}\"", .{version}),
    }) catch @panic("oom");
    if (werror) flags.append(b.allocator, "-Werror") catch @panic("oom");

    const mk = struct {
        fn module(bb: *std.Build, t: std.Build.ResolvedTarget, o: std.builtin.OptimizeMode, san: bool) *std.Build.Module {
            const m = bb.createModule(.{ .target = t, .optimize = o, .link_libc = true, .sanitize_c = if (san) .full else .off });
            m.addSystemIncludePath(.{ .cwd_relative = "/usr/include" });
            m.addSystemIncludePath(.{ .cwd_relative = "/usr/include/x86_64-linux-gnu" });
            m.addIncludePath(bb.path("src"));
            for (archives) |l| m.addObjectFile(.{ .cwd_relative = bb.fmt("{s}/lib{s}.a", .{ libdir, l }) });
            return m;
        }
    };

    const mod = mk.module(b, target, optimize, sanitize);
    mod.addCSourceFiles(.{ .files = collect(b, "src", null), .flags = flags.items });
    const exe = b.addExecutable(.{ .name = "orch", .root_module = mod, .linkage = .static });
    b.installArtifact(exe);

    // Man pages go under share/man/manN.
    if (std.fs.cwd().openDir("man", .{ .iterate = true })) |dir_| {
        var dir = dir_;
        defer dir.close();
        var it = dir.iterate();
        while (it.next() catch null) |e| {
            if (e.kind != .file) continue;
            const ext = std.fs.path.extension(e.name);
            if (ext.len != 2 or ext[1] < '1' or ext[1] > '8') continue;
            b.getInstallStep().dependOn(&b.addInstallFile(b.path(b.fmt("man/{s}", .{e.name})), b.fmt("share/man/man{c}/{s}", .{ ext[1], e.name })).step);
        }
    } else |_| {}

    // Unit tests: every test/unit/*.c plus all of src/ except main.c, in one runner.
    const tmod = mk.module(b, target, optimize, sanitize);
    tmod.addCSourceFiles(.{ .files = collect(b, "src", "src/main.c"), .flags = flags.items });
    tmod.addCSourceFiles(.{ .files = collect(b, "test/unit", null), .flags = flags.items });
    const texe = b.addExecutable(.{ .name = "orch-unit", .root_module = tmod, .linkage = .static });
    b.installArtifact(texe);
    const run = b.addRunArtifact(texe);
    run.has_side_effects = true;
    const step = b.step("test", "build and run the unit tests");
    step.dependOn(&run.step);

    // Simulation tests: test/sim/*.c plus all of src/ except main.c, many nodes in one
    // process on a virtual clock (test/sim/scenario.h). `zig build sim -- ARGS` passes
    // arguments on (a seed, a scenario name).
    const smod = mk.module(b, target, optimize, sanitize);
    smod.addCSourceFiles(.{ .files = collect(b, "src", "src/main.c"), .flags = flags.items });
    smod.addCSourceFiles(.{ .files = collect(b, "test/sim", null), .flags = flags.items });
    const sexe = b.addExecutable(.{ .name = "orch-sim", .root_module = smod, .linkage = .static });
    b.installArtifact(sexe);
    const srun = b.addRunArtifact(sexe);
    srun.has_side_effects = true;
    if (b.args) |args| srun.addArgs(args);
    const sstep = b.step("sim", "build and run the simulation tests");
    sstep.dependOn(&srun.step);
}
