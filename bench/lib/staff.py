"""Staff accounts and their sessions, made through the admin API of a running `Stack`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .stack import Stack

PASSWORD = "bench-password-1"  # every staff account the benchmarks make


def admin_client(st: Stack) -> Any:
    """An httpx client signed in as the stack's admin, with its CSRF header."""
    import httpx

    client = httpx.Client(base_url=st.base, headers={"Origin": st.base}, timeout=60)
    r = client.post("/api/login", json={"username": "admin",
                                        "password": st.env["CONNECTOR_ADMIN_PASSWORD"]})
    r.raise_for_status()
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def make_users(st: Stack, prefix: str, role: str, count: int,
               max_concurrent: int | None = None) -> list[str]:
    """Create `count` staff accounts through the admin API; returns their names.

    The server hashes each password (argon2), once per user. `max_concurrent` sets
    their routing capacity (an agent may claim no more tickets than that).
    """
    names = [f"{prefix}{i}" for i in range(count)]
    admin = admin_client(st)
    try:
        for name in names:
            r = admin.post("/api/users", json={"username": name, "password": PASSWORD,
                                               "role": role})
            if r.status_code != 201:
                raise SystemExit(f"creating user {name}: {r.status_code} {r.text}")
            if max_concurrent is not None:
                p = admin.patch(f"/api/users/{r.json()['id']}",
                                json={"max_concurrent": max_concurrent})
                if p.status_code != 200:
                    raise SystemExit(f"capacity of user {name}: {p.status_code} {p.text}")
    finally:
        admin.close()
    return names


@dataclass(frozen=True)
class Session:
    username: str
    cookie: str
    csrf: str

    def ws_headers(self, base: str) -> dict[str, str]:
        return {"Cookie": f"connector_session={self.cookie}", "Origin": base}


def login(st: Stack, username: str) -> Session:
    import httpx

    r = httpx.post(f"{st.base}/api/login", json={"username": username, "password": PASSWORD},
                   headers={"Origin": st.base}, timeout=60)
    if r.status_code != 200:
        raise SystemExit(f"login {username}: {r.status_code} {r.text}")
    return Session(username, r.cookies["connector_session"], r.json()["csrf_token"])


def set_status(st: Stack, session: Session, status: str) -> None:
    """`PATCH /api/me {"status": ...}` as the session's user (online, away or offline)."""
    import httpx

    r = httpx.patch(f"{st.base}/api/me", json={"status": status},
                    headers={"X-CSRF-Token": session.csrf, "Origin": st.base},
                    cookies={"connector_session": session.cookie}, timeout=60)
    if r.status_code != 200:
        raise SystemExit(f"status of {session.username}: {r.status_code} {r.text}")
