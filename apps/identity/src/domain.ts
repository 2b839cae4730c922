/**
 * The identity domain (seed 003): users, groups and memberships as deciders over Logline.
 *
 * Streams (the seed's splitting rules): one per user (`user-<id>`), one per group (`group-<id>`)
 * and one per membership pair (`membership-<groupId>.<userId>`). The only transactions the
 * service needs are "this user's fields change together", "this group's name" and "this user
 * is or is not in this group", so each lives on its own small stream; a group with a million
 * members never makes one hot stream. Uniqueness of usernames and emails spans users: it is
 * enforced by the inline `user_keys` read model (views.ts), not by a stream.
 *
 * Events are minimal "Set" deltas ("events as an API", slide 29): one insert event, then one
 * event per field that changed, carrying only the new value.
 */
import { type Command, type Decider, DomainError, type Event, type NewEvent } from 'logline';

export type UserEvent =
  | Event<'UserCreated', { name: string; username: string; email: string }>
  | Event<'UserNameSet', { name: string }>
  | Event<'UserUsernameSet', { username: string }>
  | Event<'UserEmailSet', { email: string }>
  | Event<'UserDeactivated', Record<string, never>>;

export type UserCommand =
  | Command<'CreateUser', { name: string; username: string; email: string }>
  | Command<'ChangeUser', { name?: string; username?: string; email?: string }>
  | Command<'DeactivateUser', Record<string, never>>;

export interface User {
  exists: boolean;
  active: boolean;
  name: string;
  username: string;
  email: string;
}

export type GroupEvent = Event<'GroupCreated', { name: string }> | Event<'GroupNameSet', { name: string }>;
export type GroupCommand = Command<'CreateGroup', { name: string }> | Command<'RenameGroup', { name: string }>;
export interface Group {
  exists: boolean;
  name: string;
}

export type MembershipEvent =
  | Event<'MemberAdded', { groupId: string; userId: string }>
  | Event<'MemberRemoved', { groupId: string; userId: string }>;
export type MembershipCommand =
  | Command<'AddMember', { groupId: string; userId: string }>
  | Command<'RemoveMember', { groupId: string; userId: string }>;

export const userStream = (id: string): string => `user-${id}`;
export const groupStream = (id: string): string => `group-${id}`;
export const membershipStream = (groupId: string, userId: string): string => `membership-${groupId}.${userId}`;

/** Usernames and emails are unique case-insensitively: this is the key they are compared by. */
export const normalizeKey = (value: string): string => value.normalize('NFC').toLowerCase();

export const userNotFound = (id: string): DomainError => new DomainError('UserNotFound', `No user has id '${id}'.`, { id });
export const groupNotFound = (id: string): DomainError => new DomainError('GroupNotFound', `No group has id '${id}'.`, { id });

/**
 * The user's personal data (docs/lifecycle.md, "Forget a person"): name and email, and the
 * username too, because people pick usernames from their own names (`jsmith`) and it identifies
 * them wherever it is shown. Each user event that carries one declares it with the user's id as
 * the subject, so the store seals it under that user's key and `forget(userId)` shreds it.
 */
export const PERSONAL_FIELDS = ['name', 'username', 'email'] as const;

/** The event with `metadata.subject` and `metadata.personal` for the personal fields it carries. */
export function declarePersonal<E extends NewEvent>(userId: string, event: E): E {
  const data = event.data as Record<string, unknown>;
  const personal = PERSONAL_FIELDS.filter((field) => data[field] !== undefined);
  if (personal.length === 0) return event;
  return { ...event, metadata: { ...event.metadata, subject: userId, personal } };
}

export const users: Decider<User, UserCommand, UserEvent> = {
  name: 'user',
  initialState: () => ({ exists: false, active: false, name: '', username: '', email: '' }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'UserCreated':
        return { exists: true, active: true, ...event.data };
      case 'UserNameSet':
        return { ...state, name: event.data.name };
      case 'UserUsernameSet':
        return { ...state, username: event.data.username };
      case 'UserEmailSet':
        return { ...state, email: event.data.email };
      case 'UserDeactivated':
        return { ...state, active: false };
    }
  },
  decide: (command, state) => {
    if (command.type === 'CreateUser') {
      if (state.exists) throw new DomainError('UserExists', 'This user id is taken.');
      return { type: 'UserCreated', data: command.data };
    }
    if (!state.exists) throw new DomainError('UserNotFound', 'No such user.');
    if (!state.active) throw new DomainError('UserDeactivated', 'The user is deactivated; it can no longer be changed.');
    if (command.type === 'DeactivateUser') return { type: 'UserDeactivated', data: {} };
    // Only what really changed becomes an event: re-sending the same PATCH records nothing.
    const { name, username, email } = command.data;
    const events: UserEvent[] = [];
    if (name !== undefined && name !== state.name) events.push({ type: 'UserNameSet', data: { name } });
    if (username !== undefined && username !== state.username) events.push({ type: 'UserUsernameSet', data: { username } });
    if (email !== undefined && email !== state.email) events.push({ type: 'UserEmailSet', data: { email } });
    return events;
  },
};

/** The user decider for writes to one user's stream: every event it decides declares its personal data. */
export const userDecider = (userId: string): Decider<User, UserCommand, UserEvent> => ({
  ...users,
  decide: async (command, state) => {
    const decided = await users.decide(command, state);
    return (Array.isArray(decided) ? decided : [decided]).map((event) => declarePersonal(userId, event));
  },
});

export const groups: Decider<Group, GroupCommand, GroupEvent> = {
  name: 'group',
  initialState: () => ({ exists: false, name: '' }),
  evolve: (state, event) => ({ ...state, exists: true, name: event.data.name }),
  decide: (command, state) => {
    if (command.type === 'CreateGroup') {
      if (state.exists) throw new DomainError('GroupExists', 'This group id is taken.');
      return { type: 'GroupCreated', data: command.data };
    }
    if (!state.exists) throw new DomainError('GroupNotFound', 'No such group.');
    return command.data.name === state.name ? [] : { type: 'GroupNameSet', data: command.data };
  },
};

/** Adding a member twice or removing a non-member records nothing (idempotent PUT / DELETE). */
export const memberships: Decider<{ member: boolean }, MembershipCommand, MembershipEvent> = {
  name: 'membership',
  initialState: () => ({ member: false }),
  evolve: (_state, event) => ({ member: event.type === 'MemberAdded' }),
  decide: (command, state) => {
    if (command.type === 'AddMember') return state.member ? [] : { type: 'MemberAdded', data: command.data };
    return state.member ? { type: 'MemberRemoved', data: command.data } : [];
  },
};
