"""Users (admins): every account, add one, change roles, disable, reset a password."""

from __future__ import annotations

import streamlit as st

from dashboard import auth
from geodata import users
from geodata.users import AccountError

engine = auth.database()
me = auth.require_user()  # the router runs a page only for a signed-in user
PASSWORD_KEY = "admin_users_one_time"  # (username, one-time password) to show once

st.title("Users")
st.caption(
    "Roles: **analyst** (analysis pages, import, exports, plan saves), **commander** "
    "(analysis pages, read-only), **meetings** (meeting editor), **admin** (users, publishing, "
    "settings, audit). Every change here is audited."
)
if shown := st.session_state.pop(PASSWORD_KEY, None):
    st.success(
        f"One-time password for **{shown[0]}**: `{shown[1]}` — give it to the user in person; "
        "it is shown only now and must be changed at the first sign-in."
    )

accounts = users.list_users(engine)
st.dataframe(accounts, hide_index=True, width="stretch")

left, right = st.columns(2)
with left, st.form("add_user", clear_on_submit=True):
    st.subheader("Add a user")
    username = st.text_input("Username (the e-mail address for single sign-on)")
    name = st.text_input("Display name")
    roles = st.multiselect("Roles", users.ROLES, default=["analyst"])
    sso = st.checkbox("Signs in through the identity provider only (no password)")
    if st.form_submit_button("Add user", type="primary"):
        password = None if sso else users.one_time_password()
        try:
            added = users.add_user(
                engine,
                username,
                roles=roles,
                actor=me.username,
                password=password,
                display_name=name,
                sso=sso,
            )
        except AccountError as err:
            st.error(str(err))
        else:
            if password:
                st.session_state[PASSWORD_KEY] = (added.username, password)
            st.rerun()

with right:
    st.subheader("Change an account")
    names = list(accounts["username"])
    if not names:
        st.info("No accounts yet.")
        st.stop()
    chosen = st.selectbox("User", names, key="admin_users_pick")
    row = accounts[accounts["username"] == chosen].iloc[0]
    new_roles = st.multiselect(
        "Roles", users.ROLES, default=row["roles"].split(), key=f"admin_roles_{chosen}"
    )
    b1, b2, b3 = st.columns(3)
    try:
        if b1.button("Save roles", key="admin_save_roles"):
            users.set_roles(engine, chosen, new_roles, actor=me.username)
            st.rerun()
        if row["is_active"] and b2.button("Disable", key="admin_disable"):
            if chosen == me.username:
                st.error("You cannot disable your own account.")
            else:
                users.set_active(engine, chosen, False, actor=me.username)
                st.rerun()
        if not row["is_active"] and b2.button("Enable", key="admin_enable"):
            users.set_active(engine, chosen, True, actor=me.username)
            st.rerun()
        if not row["sso"] and b3.button("Reset password", key="admin_reset"):
            one_time = users.reset_password(engine, chosen, actor=me.username)
            st.session_state[PASSWORD_KEY] = (chosen, one_time)
            st.rerun()
    except AccountError as err:
        st.error(str(err))
