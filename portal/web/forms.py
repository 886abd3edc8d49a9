"""Form shapes (WTForms checks shape only; the rules live in portal/services)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), Length(max=255)],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class SecondFactorForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired("Enter the code."), Length(max=20)],
                       description="The 6-digit code from your authenticator app, or one of your recovery codes.",
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True})


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."),
                                            Email("Enter a valid email address."), Length(max=255)],
                       render_kw={"autocomplete": "username", "autofocus": True})


def _new_password(label: str) -> PasswordField:
    return PasswordField(
        label, validators=[DataRequired("Choose a password."), Length(max=256)],
        description="At least 8 characters. A phrase of a few unrelated words is strong and easy to remember.",
        render_kw={"autocomplete": "new-password"})


def _repeat(field_name: str) -> PasswordField:
    return PasswordField("Repeat the new password",
                         validators=[DataRequired("Repeat the password."),
                                     EqualTo(field_name, "The two passwords are not the same.")],
                         render_kw={"autocomplete": "new-password"})


class NewPasswordForm(FlaskForm):
    password = _new_password("New password")
    confirm = _repeat("password")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")],
                                     render_kw={"autocomplete": "current-password"})
    new_password = _new_password("New password")
    confirm = _repeat("new_password")


class EnableTwoFactorForm(FlaskForm):
    code = StringField("Code from the app", validators=[DataRequired("Enter the 6-digit code."), Length(max=10)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})


class DisableTwoFactorForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired("Enter your password.")],
                             render_kw={"autocomplete": "current-password"})


class InviteForm(FlaskForm):
    """Only the CSRF token: the person is in the URL."""


class SecuritySettingsForm(FlaskForm):
    require_two_factor = BooleanField("Require two-factor sign-in for all employees")


class SignOutForm(FlaskForm):
    """Only the CSRF token."""


def apply_domain_error(form: FlaskForm, error) -> None:
    """Show a service's message beside its field (or at the top when it names none)."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = list(field.errors or []) + [error.message]
    else:
        form.form_errors.append(error.message)
