"""People, signatures, separation of duties and the anchor, on both store back ends.

Each attack a quality lead would try on the database is made here directly, as someone
with the file or a database login could (guards dropped first), and must be caught by
``verify`` alone or, for a cut-off tail, by the signed anchor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from doseprint.errors import InputError, RecordStateError
from doseprint.job.keys import load_site_key, load_trust
from doseprint.records.accounts import (
    add_user,
    change_user,
    list_users,
    set_disabled,
    set_password,
    set_policy,
    sign_in,
)
from doseprint.records.anchor import anchor_problems, make_anchor
from doseprint.records.lots import receive_lot
from doseprint.records.people import PermissionRefusedError, SignInError, users_of
from doseprint.records.policy import DEFAULT_POLICY, Policy, policy_from_json
from doseprint.records.signing import Signer, site_signer
from doseprint.records.store import RecordStore, open_store

from .helpers import Backend, FakeClock, sample_content

PASSWORDS = {"admin": "admin-secret-1", "bp": "pharmacist-secret-1",
             "ct": "technician-secret-1", "qa": "quality-secret-1",
             "bp2": "pharmacist-secret-2"}


@dataclass
class Site:
    store: RecordStore
    backend: Backend
    site: Signer

    def signer(self, user_id: str, act: str | None = None) -> Signer:
        return sign_in(self.store, user_id, PASSWORDS[user_id], act)  # type: ignore[arg-type]

    def acting(self, user_id: str, act: str | None = None) -> Signer:
        """Sign in and make the store sign as this person (and seal with the site key)."""
        signer = self.signer(user_id, act)
        self.store.sign_as(signer, self.site)
        return signer

    def verify(self) -> list[str]:
        return self.store.verify(site_keys=[self.site_public])

    @property
    def site_public(self):  # type: ignore[no-untyped-def]
        return load_site_key().public


@pytest.fixture
def site(backend: Backend) -> Iterator[Site]:
    """A store with an administrator, two pharmacists, a technician and a quality user."""
    with open_store(backend.url, clock=FakeClock()) as store:
        admin = add_user(store, "admin", "A. Admin", ["admin"], PASSWORDS["admin"], None)
        assert admin.roles == {"admin"}
        signer = sign_in(store, "admin", PASSWORDS["admin"], "manage_users")
        for uid, name, role in [("bp", "B. Pharmacist", "pharmacist"),
                                ("bp2", "D. Pharmacist", "pharmacist"),
                                ("ct", "C. Technician", "technician"),
                                ("qa", "Q. Quality", "quality")]:
            add_user(store, uid, name, [role], PASSWORDS[uid], signer)
        # The lot sample_content() names: a store with accounts releases only records
        # whose lots were received into it (records/lots.py).
        receive_lot(store, "ABC123", formulation="theophylline-hpc-30",
                    formulation_sha256="ab" * 32, expiry="2099-12-31", supplier="Acme",
                    by="ct", signer=sign_in(store, "ct", PASSWORDS["ct"], "receive_lot"))
        yield Site(store, backend, site_signer(load_site_key()))


def printed_by(site: Site, operator: str = "ct", qc_by: str = "ct") -> str:
    """A completed, QC-passed print, every event signed as a real print's would be."""
    store = site.store
    site.acting(operator, "print")
    record_id = store.create(sample_content(), actor=operator)
    store.append(record_id, "started", {"port": "socket://127.0.0.1:5555"}, operator)
    store.append(record_id, "lines", {"entries": [[1, "G28", "ok"]], "last_acked": 1}, operator)
    store.append(record_id, "completed", {"last_acked": 1}, operator)
    site.acting(qc_by, "qc")
    store.append(record_id, "qc", {"passed": True, "masses_mg": [400.0]}, qc_by)
    return record_id


# Accounts -------------------------------------------------------------------------------


def test_the_first_account_must_be_an_administrators(backend: Backend) -> None:
    with open_store(backend.url) as store:
        with pytest.raises(InputError, match="first account must be an administrator"):
            add_user(store, "bp", "B. Pharmacist", ["pharmacist"], "pharmacist-secret-1", None)
        assert list_users(store) == []


def test_accounts_are_unique_and_made_by_an_administrator(site: Site) -> None:
    admin = site.signer("admin")
    with pytest.raises(InputError, match="taken"):
        add_user(site.store, "bp", "Another", ["pharmacist"], "some-password-1", admin)
    with pytest.raises(InputError, match="an administrator signs"):
        add_user(site.store, "zz", "Z", ["pharmacist"], "some-password-1", None)
    with pytest.raises(PermissionRefusedError):
        add_user(site.store, "zz", "Z", ["pharmacist"], "some-password-1", site.signer("bp"))
    with pytest.raises(InputError, match="shorter"):
        add_user(site.store, "zz", "Z", ["pharmacist"], "short", admin)
    with pytest.raises(InputError, match="not a user id"):
        add_user(site.store, "Bad Id", "Z", ["pharmacist"], "some-password-1", admin)
    assert [u.id for u in list_users(site.store)] == ["admin", "bp", "bp2", "ct", "qa"]
    assert site.verify() == []


def test_passwords_are_hashed_with_argon2_and_keys_sealed(site: Site) -> None:
    rows = site.backend.query("SELECT data FROM site_events WHERE kind = 'user_added'")
    for (text,) in rows:
        data = json.loads(text)
        assert data["password_hash"].startswith("$argon2id$")
        assert "ENCRYPTED PRIVATE KEY" in data["sealed_private_key"]
        assert not any(p in text for p in PASSWORDS.values())


def test_the_real_hasher_is_argon2id_at_the_recommended_cost() -> None:
    from doseprint.records.people import PASSWORD_HASHER

    assert PASSWORD_HASHER.hash("a-password-1").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_failed_log_ins_are_recorded_and_lock_the_account(site: Site) -> None:
    for _ in range(DEFAULT_POLICY.lockout_after):
        with pytest.raises(SignInError):
            sign_in(site.store, "bp", "not-the-password", "release")
    failed = site.store.site_events(("login_failed", "account_locked"))
    assert [e.kind for e in failed] == ["login_failed"] * 5 + ["account_locked"]
    assert all(e.data["user"] == "bp" and not e.signature for e in failed)
    # Locked: the right password no longer signs in.
    with pytest.raises(SignInError, match="cannot sign"):
        site.signer("bp", "release")
    set_disabled(site.store, "bp", False, site.signer("admin"), "identity checked")
    assert site.signer("bp", "release").user_id == "bp"
    with pytest.raises(SignInError):
        sign_in(site.store, "nobody", "whatever-1234", "release")
    assert site.store.site_events(("login_failed",))[-1].data["reason"] == "unknown user"
    assert site.verify() == []


def test_a_good_log_in_resets_the_count(site: Site) -> None:
    for _ in range(4):
        with pytest.raises(SignInError):
            sign_in(site.store, "bp", "not-the-password", "release")
    site.signer("bp")
    for _ in range(4):
        with pytest.raises(SignInError):
            sign_in(site.store, "bp", "not-the-password", "release")
    assert users_of(site.store.site_events())["bp"].status == "active"


def test_a_disabled_account_cannot_sign(site: Site) -> None:
    set_disabled(site.store, "ct", True, site.signer("admin"), "left")
    with pytest.raises(SignInError):
        site.signer("ct")
    with pytest.raises(InputError, match="own account"):
        set_disabled(site.store, "admin", True, site.signer("admin"), "oops")


def test_roles_decide_who_signs_what(site: Site) -> None:
    with pytest.raises(PermissionRefusedError, match="may not sign 'release'"):
        site.signer("ct", "release")
    assert site.store.site_events(("login_failed",))[-1].data["reason"] == "not permitted"
    change_user(site.store, "ct", site.signer("admin"), roles=["technician", "pharmacist"])
    assert site.signer("ct", "release").roles == {"technician", "pharmacist"}


def test_a_new_password_brings_a_new_key_and_old_signatures_still_verify(site: Site) -> None:
    record_id = printed_by(site)
    old_key = users_of(site.store.site_events())["ct"].key.key_id
    set_password(site.store, "ct", "a-new-technician-pw", site.signer("ct"))
    with pytest.raises(SignInError):
        site.signer("ct")
    PASSWORDS["ct"] = "a-new-technician-pw"
    try:
        assert site.signer("ct").key_id != old_key
        site.acting("ct", "qc")
        site.store.append(record_id, "qc", {"passed": True, "masses_mg": [401.0]}, "ct")
        assert site.verify() == []
    finally:
        PASSWORDS["ct"] = "technician-secret-1"


def test_a_policy_is_checked_and_put_on_record(site: Site, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        policy_from_json({"schema": "doseprint.site-policy/1", "lockout_after": 0,
                          "permissions": {"release": ["wizard"], "fly": ["admin"]},
                          "colour": "red"}, "policy.json")
    keys = {p.key for p in info.value.problems}
    assert {"lockout_after", "permissions.release", "permissions.fly", "colour"} <= keys
    policy = Policy(permissions=dict(DEFAULT_POLICY.permissions), lockout_after=2)
    with pytest.raises(PermissionRefusedError):
        set_policy(site.store, policy, site.signer("bp"))
    set_policy(site.store, policy, site.signer("admin"))
    for _ in range(2):
        with pytest.raises(SignInError):
            sign_in(site.store, "qa", "wrong-password", None)
    assert users_of(site.store.site_events())["qa"].locked
    assert site.verify() == []


# Signed events and separation of duties -----------------------------------------------


def test_in_a_store_with_accounts_every_event_is_signed(site: Site) -> None:
    record_id = printed_by(site)
    signed = site.backend.query("SELECT seq, signer FROM event_signatures WHERE record_id = ?"
                                " ORDER BY seq", (record_id,))
    assert [s for _, s in signed] == ["ct"] * 5
    site.store.sign_as(None)
    with pytest.raises(InputError, match="must be signed"):
        site.store.append(record_id, "qc", {"passed": True}, "ct")
    with pytest.raises(InputError, match="must be signed"):
        site.store.create(sample_content(), actor="Somebody")
    assert site.verify() == []


def test_the_operator_or_qc_recorder_does_not_release(site: Site) -> None:
    record_id = printed_by(site, operator="bp", qc_by="bp2")
    site.acting("bp", "release")
    with pytest.raises(RecordStateError, match="printed this batch"):
        site.store.release(record_id, "bp", "release")
    site.acting("bp2", "release")
    with pytest.raises(RecordStateError, match="recorded QC"):
        site.store.release(record_id, "bp2", "release")
    # A one-person pharmacy: the policy allows it, with a justification each time.
    policy = Policy(permissions=dict(DEFAULT_POLICY.permissions), release_by_operator=True)
    set_policy(site.store, policy, site.signer("admin"))
    site.acting("bp", "release")
    with pytest.raises(InputError, match="justification"):
        site.store.release(record_id, "bp", "release")
    event = site.store.release(record_id, "bp", "release", "sole pharmacist on duty")
    assert event.data["justification"] == "sole pharmacist on duty"
    assert event.data["same_person"] == ["printed"]
    assert event.data["signer_name"] == "B. Pharmacist"
    assert site.verify() == []


def test_a_third_person_releases(site: Site) -> None:
    record_id = printed_by(site)
    site.acting("bp", "release")
    event = site.store.release(record_id, "bp", "QA release")
    assert "same_person" not in event.data
    record = site.store.get(record_id)
    assert record.status == "released"
    # Part 11 §11.50: the printed name, with the id, wherever the signature is shown.
    assert record.signature is not None and record.signature.by == "B. Pharmacist (bp)"
    from doseprint.records.batch_report import batch_report_context

    context = batch_report_context(record)
    assert context["signatures"][0]["by"] == "B. Pharmacist (bp)"
    assert site.verify() == []


# Attacks on the database -----------------------------------------------------------------


def _rejected(site: Site) -> str:
    record_id = printed_by(site)
    site.acting("bp", "release")
    site.store.release(record_id, "bp", "release")
    site.store.reject(record_id, "bp", "recalled: wrong lot")
    return record_id


def test_deleting_the_last_event_is_caught(site: Site) -> None:
    record_id = _rejected(site)
    (last,), = site.backend.query("SELECT MAX(seq) FROM events WHERE record_id = ?",
                                  (record_id,))
    site.backend.tamper(("DELETE FROM event_signatures WHERE record_id = ? AND seq = ?",
                         (record_id, last)),
                        ("DELETE FROM events WHERE record_id = ? AND seq = ?", (record_id, last)))
    assert site.store.get(record_id).status == "released"  # what the attacker wanted
    problems = site.verify()
    assert any(f"its event {last} is gone" in p for p in problems), problems


def test_deleting_the_tail_and_its_seal_is_caught_by_the_anchor(site: Site) -> None:
    record_id = printed_by(site)
    site.acting("qa", "export_anchor")
    site.acting("bp", "release")
    site.store.release(record_id, "bp", "release")
    site.store.reject(record_id, "bp", "recalled")
    qa = site.signer("qa", "export_anchor")
    anchor = json.loads(make_anchor(site.store, qa, site.site, site.site_public))
    # Cut the rejection off the record and everything since it off the site chain.
    last = site.backend.query("SELECT MAX(seq) FROM events WHERE record_id = ?", (record_id,))
    seals = site.backend.query("SELECT seq FROM site_events WHERE kind = 'head_sealed'"
                               " ORDER BY seq DESC LIMIT 1")
    site.backend.tamper(
        ("DELETE FROM event_signatures WHERE record_id = ? AND seq = ?", (record_id, last[0][0])),
        ("DELETE FROM events WHERE record_id = ? AND seq = ?", (record_id, last[0][0])),
        ("DELETE FROM site_events WHERE seq >= ?", (seals[0][0],)),
    )
    assert site.store.get(record_id).status == "released"
    problems = anchor_problems(site.store, anchor, load_trust())
    assert any(f"record {record_id}: its event {last[0][0]}" in p for p in problems), problems
    assert any("site chain" in p for p in problems)


def test_deleting_a_record_is_caught(site: Site) -> None:
    record_id = printed_by(site)
    keep = printed_by(site)
    qa = site.signer("qa", "export_anchor")
    anchor = json.loads(make_anchor(site.store, qa, site.site, site.site_public))
    site.backend.tamper(("DELETE FROM event_signatures WHERE record_id = ?", (record_id,)),
                        ("DELETE FROM events WHERE record_id = ?", (record_id,)),
                        ("DELETE FROM records WHERE id = ?", (record_id,)))
    assert [r.id for r in site.store.list_records()] == [keep]
    assert any(f"record {record_id}: sealed" in p and "record is gone" in p
               for p in site.verify())
    assert any(f"record {record_id}: in the anchor" in p
               for p in anchor_problems(site.store, anchor, load_trust()))


def test_editing_and_rechaining_is_caught(site: Site) -> None:
    from doseprint.records.chain import canonical_json, event_hash

    record_id = printed_by(site)
    rows = site.backend.query(
        "SELECT seq, utc, actor, kind, data, prev_hash FROM events WHERE record_id = ?"
        " ORDER BY seq", (record_id,))
    statements = []
    prev = None
    for seq, utc, actor, kind, data, prev_hash in rows:
        parsed = json.loads(data)
        if kind == "qc":
            parsed["masses_mg"] = [999.0]  # the edit
        link = prev if prev is not None else prev_hash
        digest = event_hash(record_id, seq, utc, actor, kind, parsed, link)
        statements.append(("UPDATE events SET data = ?, prev_hash = ?, hash = ?"
                           " WHERE record_id = ? AND seq = ?",
                           (canonical_json(parsed), link, digest, record_id, seq)))
        prev = digest
    site.backend.tamper(*statements)
    problems = site.verify()
    assert any("does not match (altered after it was signed)" in p for p in problems), problems


def test_an_unsigned_event_added_around_doseprint_is_caught(site: Site) -> None:
    from doseprint.records.chain import canonical_json, event_hash

    record_id = printed_by(site)
    (seq, digest), = site.backend.query(
        "SELECT seq, hash FROM events WHERE record_id = ? ORDER BY seq DESC LIMIT 1",
        (record_id,))
    data = {"meaning": "released", "signer_name": "B. Pharmacist"}
    utc = "2026-11-22T11:00:00.000Z"
    new = event_hash(record_id, seq + 1, utc, "bp", "released", data, digest)
    site.backend.execute(("INSERT INTO events (record_id, seq, utc, actor, kind, data,"
                          " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (record_id, seq + 1, utc, "bp", "released", canonical_json(data),
                           digest, new)))
    assert any("is not signed" in p for p in site.verify())


def test_a_forged_account_in_the_site_chain_is_caught(site: Site) -> None:
    from doseprint.records.chain import canonical_json, event_hash

    rows = site.backend.query("SELECT seq, utc, actor, kind, data, prev_hash FROM site_events"
                              " ORDER BY seq")
    statements = []
    prev = None
    for seq, utc, actor, kind, data, prev_hash in rows:
        parsed = json.loads(data)
        if kind == "user_added" and parsed["user"] == "ct":
            parsed["roles"] = ["pharmacist"]  # promote the technician
        link = prev if prev is not None else prev_hash
        digest = event_hash("site", seq, utc, actor, kind, parsed, link)
        statements.append(("UPDATE site_events SET data = ?, prev_hash = ?, hash = ?"
                           " WHERE seq = ?", (canonical_json(parsed), link, digest, seq)))
        prev = digest
    site.backend.tamper(*statements)
    assert any("site event" in p and "does not match" in p for p in site.verify())


def test_an_anchor_by_an_untrusted_key_or_edited_is_refused(site: Site) -> None:
    from doseprint.job.keys import Trust

    printed_by(site)
    qa = site.signer("qa", "export_anchor")
    anchor = json.loads(make_anchor(site.store, qa, site.site, site.site_public))
    assert anchor_problems(site.store, anchor, load_trust()) == []
    assert "does not trust" in anchor_problems(site.store, anchor, Trust(None))[0]
    anchor["records"] = anchor["records"][:-1]
    assert "altered" in anchor_problems(site.store, anchor, load_trust())[0]
    assert site.store.site_events(("anchor_exported",))[-1].actor == "qa"


def test_an_unsigned_event_dated_before_the_accounts_is_caught(site: Site) -> None:
    """A forged tail back-dated to before the first account does not pass as an old,
    unsigned event: it follows signed events and is dated before them."""
    from doseprint.records.chain import canonical_json, event_hash

    record_id = printed_by(site)
    (seq, digest), = site.backend.query(
        "SELECT seq, hash FROM events WHERE record_id = ? ORDER BY seq DESC LIMIT 1",
        (record_id,))
    data = {"meaning": "released"}
    utc = "2000-01-01T00:00:00.000Z"
    new = event_hash(record_id, seq + 1, utc, "B. Pharmacist", "released", data, digest)
    site.backend.execute(("INSERT INTO events (record_id, seq, utc, actor, kind, data,"
                          " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (record_id, seq + 1, utc, "B. Pharmacist", "released",
                           canonical_json(data), digest, new)))
    assert any(f"event {seq + 1}" in p and "is not signed" in p for p in site.verify())
